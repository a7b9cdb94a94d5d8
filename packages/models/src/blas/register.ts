/**
 * Installs the BLAS kernels for backend 'wasm' on top of the kernels registered before them (the
 * patched XNNPACK ones, which they fall back to), and restores those on uninstall.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { registerPatchedWasmKernels } from '../wasm/patch.js';
import { blasConvKernels } from './conv-kernels.js';
import type { Sgemm } from './library.js';
import { blasMatMulKernels } from './matmul-kernels.js';
import { blasReduceKernels } from './reduce-kernels.js';

interface InstallState {
  /** The configs the BLAS kernels replaced, by kernel name; empty when not installed. */
  replaced: Map<string, KernelConfig>;
}

const KEY = Symbol.for('oiafed.models.blasKernels');

function installState(): InstallState {
  const g = globalThis as Record<symbol, InstallState | undefined>;
  g[KEY] ??= { replaced: new Map() };
  return g[KEY];
}

/** Whether the BLAS kernels are registered now. */
export function blasKernelsInstalled(): boolean {
  return installState().replaced.size > 0;
}

/** Registers the BLAS kernels (idempotent). */
export function installBlasKernels(sgemm: Sgemm): void {
  const s = installState();
  if (s.replaced.size > 0) return;
  registerPatchedWasmKernels();
  const previous = (name: string): KernelFunc => {
    const cfg = tf.getKernel(name, 'wasm');
    if (cfg == null) throw new Error(`OpenBLAS kernels: no wasm kernel '${name}' to wrap; expected tfjs-backend-wasm 4.22.0`);
    s.replaced.set(name, cfg);
    return cfg.kernelFunc;
  };
  const kernels = [...blasConvKernels(sgemm, previous), ...blasMatMulKernels(sgemm, previous), ...blasReduceKernels(sgemm, previous)];
  for (const { name, func } of kernels) {
    const old = s.replaced.get(name)!;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...old, kernelFunc: func });
  }
}

/** Puts back the kernels the BLAS ones replaced (no-op when not installed). */
export function uninstallBlasKernels(): void {
  const s = installState();
  for (const [name, cfg] of s.replaced) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(cfg);
  }
  s.replaced.clear();
}
