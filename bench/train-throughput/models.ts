/**
 * The benchmark architectures, built with tfjs-layers directly so the bench does not depend on
 * the model registry. They mirror the registry's `lenet`, `simple_cnn`, `cifar10_cnn` and
 * `fmnist_cnn` (bench:federation's CNN, with the registry's He-normal / Glorot-uniform
 * initializers), and torch_bench.py mirrors them layer for layer.
 */
import * as tfl from '@tensorflow/tfjs-layers';

export type BenchModelName = 'lenet' | 'simple_cnn' | 'fmnist_cnn' | 'cifar10_cnn';

export const BENCH_MODELS: readonly BenchModelName[] = ['lenet', 'simple_cnn', 'fmnist_cnn', 'cifar10_cnn'];

/** Input shape (HWC) per model. */
export const INPUT_SHAPE: Record<BenchModelName, [number, number, number]> = {
  lenet: [28, 28, 1],
  simple_cnn: [32, 32, 3],
  fmnist_cnn: [28, 28, 1],
  cifar10_cnn: [32, 32, 3],
};

/** The part of a tfjs-layers namespace the builder uses (tfjs-node-gpu re-exports one). */
export interface LayersLib {
  sequential: typeof tfl.sequential;
  layers: typeof tfl.layers;
}

/**
 * Builds an uncompiled model; weights use the layers' default initializers. `lib` lets a caller
 * that ships its own tfjs copy (tfjs-node-gpu) build with that copy.
 */
export function buildBenchModel(name: BenchModelName, lib: LayersLib = tfl): tfl.LayersModel {
  const m = lib.sequential();
  const inputShape = INPUT_SHAPE[name];
  if (name === 'lenet') {
    m.add(lib.layers.conv2d({ inputShape, filters: 6, kernelSize: 5, activation: 'relu' }));
    m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    m.add(lib.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu' }));
    m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    m.add(lib.layers.flatten());
    m.add(lib.layers.dense({ units: 120, activation: 'relu' }));
    m.add(lib.layers.dense({ units: 84, activation: 'relu' }));
    m.add(lib.layers.dense({ units: 10 }));
  } else if (name === 'simple_cnn') {
    m.add(lib.layers.conv2d({ inputShape, filters: 32, kernelSize: 3, activation: 'relu' }));
    m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    m.add(lib.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }));
    m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    m.add(lib.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }));
    m.add(lib.layers.flatten());
    m.add(lib.layers.dense({ units: 128, activation: 'relu' }));
    m.add(lib.layers.dense({ units: 10 }));
  } else if (name === 'fmnist_cnn') {
    const he = { kernelInitializer: 'heNormal', biasInitializer: 'zeros' } as const;
    const glorot = { kernelInitializer: 'glorotUniform', biasInitializer: 'zeros' } as const;
    m.add(lib.layers.conv2d({ inputShape, filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', ...he }));
    m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    m.add(lib.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu', ...he }));
    m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    m.add(lib.layers.flatten());
    m.add(lib.layers.dense({ units: 128, activation: 'relu', ...glorot }));
    m.add(lib.layers.dropout({ rate: 0.5 }));
    m.add(lib.layers.dense({ units: 10, ...glorot }));
  } else {
    const widths = [64, 128, 256, 512];
    widths.forEach((filters, i) => {
      m.add(
        lib.layers.conv2d({
          ...(i === 0 ? { inputShape } : {}),
          filters,
          kernelSize: 3,
          padding: 'same',
        }),
      );
      m.add(lib.layers.batchNormalization());
      m.add(lib.layers.activation({ activation: 'relu' }));
      if (i < 3) m.add(lib.layers.maxPooling2d({ poolSize: 2 }));
    });
    m.add(lib.layers.globalAveragePooling2d({}));
    m.add(lib.layers.dropout({ rate: 0.5 }));
    m.add(lib.layers.dense({ units: 10 }));
  }
  return m;
}
