/**
 * Patched tfjs-backend-wasm kernels that let tfjs-layers models train on the wasm backend in
 * Node, correctly and fast. @tensorflow/tfjs-backend-wasm is a dependency of this package pinned
 * at exactly 4.22.0 (the default compute path, so it must be installed with it): the kernels read
 * backend internals.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { applyDefaultBlasMode } from '../blas/openblas.js';
import { registerPatchedWasmKernels } from './patch.js';

export { PATCHED_WASM_KERNELS, registerPatchedWasmKernels } from './patch.js';
export { skipInputGradient } from './input-grad-kernels.js';

/** Directory holding the .wasm binaries of the installed @tensorflow/tfjs-backend-wasm. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
}

/**
 * Prepares and selects the wasm backend for training in Node: points it at the packaged .wasm
 * files, registers the patched kernels (on OpenBLAS where it loads: enableBlasKernels('auto')),
 * runs single-threaded (threaded wasm does not start in Node as shipped), then `tf.setBackend('wasm')` and waits until it is ready.
 */
export async function initWasmBackend(): Promise<void> {
  // setWasmPaths throws once the backend has been initialized; the paths are in place then.
  const registry = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
  if (registry['wasm'] == null) {
    setWasmPaths(wasmBinaryDir());
    setThreadsCount(1);
  }
  registerPatchedWasmKernels();
  // OpenBLAS convolutions and matmuls when the library loads (OIAFED_BLAS=off|on overrides).
  applyDefaultBlasMode();
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('initWasmBackend: tf.setBackend("wasm") failed; is @tensorflow/tfjs-backend-wasm 4.22.0 installed?');
  await tf.ready();
}
