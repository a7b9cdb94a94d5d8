import * as tfl from '@tensorflow/tfjs-layers';
import { BUILTIN_MODELS } from '../catalog.js';
import { registerModel, type ModelFactory } from '../registry.js';
import type { ModelContext } from '../types.js';
import { resnet18, resnet20 } from './resnet.js';

/**
 * Built-in model types. Every layer gets an explicit name (stable weight names across nodes)
 * and a seeded initializer derived from `ctx.seed`, so equal seeds give bit-identical weights.
 * Batch norm uses PyTorch's defaults (momentum 0.1 in PyTorch terms, epsilon 1e-5).
 */

/** Hands out a fresh initializer seed per call, all derived from the model seed. */
function seeder(ctx: ModelContext): () => number {
  let k = 0;
  const base = (ctx.seed ?? 0) * 1009;
  return () => base + ++k;
}

function conv(
  name: string,
  filters: number,
  kernelSize: number,
  next: () => number,
  opts: { padding?: 'same' | 'valid'; activation?: 'relu' | 'linear'; inputShape?: number[] },
): tfl.layers.Layer {
  return tfl.layers.conv2d({
    name,
    filters,
    kernelSize,
    padding: opts.padding ?? 'valid',
    activation: opts.activation ?? 'linear',
    kernelInitializer: tfl.initializers.heNormal({ seed: next() }),
    biasInitializer: 'zeros',
    ...(opts.inputShape ? { inputShape: opts.inputShape } : {}),
  });
}

function dense(name: string, units: number, next: () => number, activation: 'relu' | 'linear', inputShape?: number[]): tfl.layers.Layer {
  return tfl.layers.dense({
    name,
    units,
    activation,
    kernelInitializer: tfl.initializers.glorotUniform({ seed: next() }),
    biasInitializer: 'zeros',
    ...(inputShape ? { inputShape } : {}),
  });
}

function batchNorm(name: string): tfl.layers.Layer {
  return tfl.layers.batchNormalization({ name, momentum: 0.9, epsilon: 1e-5 });
}

/** The 4-block batch-norm CNN used for CIFAR-10 (about 1.56 M parameters). */
const cifar10Cnn: ModelFactory = (args, ctx) => {
  const next = seeder(ctx);
  const model = tfl.sequential({ name: 'cifar10_cnn' });
  const widths = [64, 128, 256, 512];
  widths.forEach((w, i) => {
    model.add(conv(`conv${i + 1}`, w, 3, next, { padding: 'same', inputShape: i === 0 ? ctx.inputShape : undefined }));
    model.add(batchNorm(`bn${i + 1}`));
    model.add(tfl.layers.reLU({ name: `relu${i + 1}` }));
    if (i < 3) model.add(tfl.layers.maxPooling2d({ name: `pool${i + 1}`, poolSize: 2, strides: 2 }));
  });
  model.add(tfl.layers.globalAveragePooling2d({ name: 'gap' }));
  const rate = (args.dropout as number | undefined) ?? 0.5;
  if (rate > 0) model.add(tfl.layers.dropout({ name: 'dropout', rate }));
  model.add(dense('fc', ctx.numClasses, next, 'linear'));
  return model;
};

/** The TensorFlow tutorial CNN: conv 32-64-64 (3x3, relu), two max-pools, dense 128. */
const simpleCnn: ModelFactory = (args, ctx) => {
  const next = seeder(ctx);
  const model = tfl.sequential({ name: 'simple_cnn' });
  model.add(conv('conv1', 32, 3, next, { activation: 'relu', inputShape: ctx.inputShape }));
  model.add(tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 2, strides: 2 }));
  model.add(conv('conv2', 64, 3, next, { activation: 'relu' }));
  model.add(tfl.layers.maxPooling2d({ name: 'pool2', poolSize: 2, strides: 2 }));
  model.add(conv('conv3', 64, 3, next, { activation: 'relu' }));
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  model.add(dense('fc1', 128, next, 'relu'));
  const rate = (args.dropout as number | undefined) ?? 0;
  if (rate > 0) model.add(tfl.layers.dropout({ name: 'dropout', rate }));
  model.add(dense('fc2', ctx.numClasses, next, 'linear'));
  return model;
};

/**
 * The Fashion-MNIST CNN of bench:federation (PyTorch's classic MNIST example shape, 421,642
 * parameters): conv 32@3x3 same, pool, conv 64@3x3 same, pool, dense 128, dropout 0.5, classes.
 */
const fmnistCnn: ModelFactory = (args, ctx) => {
  const next = seeder(ctx);
  const model = tfl.sequential({ name: 'fmnist_cnn' });
  model.add(conv('conv1', 32, 3, next, { padding: 'same', activation: 'relu', inputShape: ctx.inputShape }));
  model.add(tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 2, strides: 2 }));
  model.add(conv('conv2', 64, 3, next, { padding: 'same', activation: 'relu' }));
  model.add(tfl.layers.maxPooling2d({ name: 'pool2', poolSize: 2, strides: 2 }));
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  model.add(dense('fc1', 128, next, 'relu'));
  const rate = (args.dropout as number | undefined) ?? 0.5;
  if (rate > 0) model.add(tfl.layers.dropout({ name: 'dropout', rate }));
  model.add(dense('fc2', ctx.numClasses, next, 'linear'));
  return model;
};

/** LeNet-5 as NIID-Bench's MNIST CNN: conv 6@5x5, pool, conv 16@5x5, pool, 120, 84, classes. */
const lenet: ModelFactory = (args, ctx) => {
  const next = seeder(ctx);
  const model = tfl.sequential({ name: 'lenet' });
  model.add(conv('conv1', 6, 5, next, { activation: 'relu', inputShape: ctx.inputShape }));
  model.add(tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 2, strides: 2 }));
  model.add(conv('conv2', 16, 5, next, { activation: 'relu' }));
  model.add(tfl.layers.maxPooling2d({ name: 'pool2', poolSize: 2, strides: 2 }));
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  model.add(dense('fc1', 120, next, 'relu'));
  model.add(dense('fc2', 84, next, 'relu'));
  const rate = (args.dropout as number | undefined) ?? 0;
  if (rate > 0) model.add(tfl.layers.dropout({ name: 'dropout', rate }));
  model.add(dense('fc3', ctx.numClasses, next, 'linear'));
  return model;
};

function mlpWith(defaultHidden: number[]): ModelFactory {
  return (args, ctx) => {
    const next = seeder(ctx);
    const hidden = (args.hidden as number[] | undefined) ?? defaultHidden;
    const rate = (args.dropout as number | undefined) ?? 0;
    const model = tfl.sequential({ name: hidden.length === 0 ? 'logistic' : 'mlp' });
    let inputShape: number[] | undefined = ctx.inputShape;
    if (ctx.inputShape.length > 1) {
      model.add(tfl.layers.flatten({ name: 'flatten', inputShape: ctx.inputShape }));
      inputShape = undefined;
    }
    hidden.forEach((units, i) => {
      model.add(dense(`fc${i + 1}`, units, next, 'relu', i === 0 ? inputShape : undefined));
      if (rate > 0) model.add(tfl.layers.dropout({ name: `dropout${i + 1}`, rate }));
    });
    model.add(dense(`fc${hidden.length + 1}`, ctx.numClasses, next, 'linear', hidden.length === 0 ? inputShape : undefined));
    return model;
  };
}

const cifar10CnnFactory = cifar10Cnn;
const mlpFactory = mlpWith([200, 200]);
const logisticFactory = mlpWith([]);

/**
 * Registers the built-in types: `cifar10_cnn`, `simple_cnn`, `lenet` (alias `mnist_cnn`), `fmnist_cnn`, `mlp`,
 * `logistic`, `resnet20`, `resnet18` (resnet.ts). Safe to call any number of times.
 */
export function registerBuiltinModels(): void {
  const factories: Record<string, ModelFactory> = {
    cifar10_cnn: cifar10CnnFactory,
    simple_cnn: simpleCnn,
    lenet,
    mnist_cnn: lenet,
    fmnist_cnn: fmnistCnn,
    mlp: mlpFactory,
    logistic: logisticFactory,
    resnet20,
    resnet18,
  };
  // Schemas, input shapes and heads live in the tfjs-free catalog, which validate reads.
  for (const [type, info] of Object.entries(BUILTIN_MODELS)) {
    registerModel(type, factories[type]!, { argsSchema: info.argsSchema, defaultInputShape: info.defaultInputShape, head: info.head });
  }
}
