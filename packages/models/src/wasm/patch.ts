/**
 * Registration of the patched wasm kernels (apart from index.ts so that the OpenBLAS kernel path,
 * which wraps them, can ensure they are installed without an import cycle).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
// Importing the package registers the stock wasm kernels, which must exist before they are
// looked up and wrapped. A named import, not a bare one: a bare import would stay in this module's
// .d.ts and make every consumer's type-check load the wasm package's Emscripten typings.
import { version_wasm as installedWasmVersion } from '@tensorflow/tfjs-backend-wasm';
import { batchNormGradKernel, batchNormKernel, installBatchNormGradient } from './batch-norm.js';
import { convGradKernels } from './conv-grad-kernels.js';
import { inputGradKernels } from './input-grad-kernels.js';
import { matMulKernels } from './matmul-kernels.js';
import { poolTileKernels } from './pool-tile-kernels.js';
import { reduceKernels } from './reduce-kernels.js';

/** The names of the kernels registerPatchedWasmKernels installs for backend 'wasm'. */
export const PATCHED_WASM_KERNELS: readonly string[] = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'MaxPoolGrad',
  'Tile',
  'BatchMatMul',
  '_FusedMatMul',
  'Sum',
  'Mean',
  'Identity',
  'Conv2D',
  'FusedConv2D',
  'Cast',
  'FusedBatchNorm',
];

interface PatchState {
  stock: Map<string, KernelConfig>;
  installed: boolean;
}

// One record per process, shared by every copy of this module, so that a second copy neither
// double-wraps the stock kernels nor loses them.
const STATE_KEY = Symbol.for('oiafed.models.patchedWasmKernels');

function state(): PatchState {
  const g = globalThis as Record<symbol, PatchState | undefined>;
  let s = g[STATE_KEY];
  if (s == null) {
    s = { stock: new Map(), installed: false };
    g[STATE_KEY] = s;
  }
  return s;
}

/**
 * Registers the corrected wasm kernels (tf.registerKernel for backend 'wasm', replacing the
 * stock kernel where one exists). Idempotent; may run before or after the wasm backend is
 * initialized.
 */
export function registerPatchedWasmKernels(): void {
  // The patched kernels read backend internals of exactly this release.
  if (installedWasmVersion !== '4.22.0') {
    throw new Error(`registerPatchedWasmKernels: @tensorflow/tfjs-backend-wasm ${installedWasmVersion} is installed; the patched kernels need exactly 4.22.0`);
  }
  const s = state();
  // The FusedBatchNorm gradient may have been registered (by tfjs-layers) after the kernels.
  if (s.installed) return installBatchNormGradient();
  for (const name of PATCHED_WASM_KERNELS) {
    const cfg = tf.getKernel(name, 'wasm');
    if (cfg != null) s.stock.set(name, cfg);
  }
  const stock = (name: string): KernelConfig | undefined => s.stock.get(name);
  const configs = [...convGradKernels(stock), ...poolTileKernels(stock), ...matMulKernels(stock), ...reduceKernels(stock), ...inputGradKernels(stock), batchNormKernel(stock)];
  for (const cfg of configs) {
    const old = s.stock.get(cfg.kernelName);
    if (old != null) tf.unregisterKernel(cfg.kernelName, 'wasm');
    // The stock setup (cwrap of the C entry point) must still run when the backend initializes,
    // because the patched kernels fall back to or wrap the stock function.
    tf.registerKernel(old?.setupFunc != null ? { ...cfg, setupFunc: old.setupFunc } : cfg);
  }
  tf.registerKernel(batchNormGradKernel());
  s.installed = true;
  installBatchNormGradient();
}
