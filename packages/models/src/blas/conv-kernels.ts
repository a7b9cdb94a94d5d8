import type { KernelFunc } from '@tensorflow/tfjs-core';
import type { Sgemm } from './library.js';

export function blasConvKernels(_sgemm: Sgemm, _previous: (name: string) => KernelFunc): Array<{ name: string; func: KernelFunc }> {
  return [];
}
