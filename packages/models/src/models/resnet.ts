import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelFactory } from '../registry.js';
import type { ModelContext } from '../types.js';

/**
 * CIFAR ResNets as tfjs-layers functional models, laid out so a PyTorch state_dict maps onto them
 * name by name (`layer2.0.conv1/kernel` is PyTorch's `layer2.0.conv1.weight`, transposed):
 *
 * - `resnet20`: He et al. 2016, "Deep Residual Learning for Image Recognition", Sec. 4.2: a 3x3
 *   conv of 16 filters, then 3 stages of n = 3 basic blocks (16, 32, 64 filters; feature maps
 *   32, 16, 8), global average pooling and the classifier: 6n + 2 = 20 weighted layers. The
 *   shortcuts are identities everywhere; where a stage halves the map and doubles the width, the
 *   paper's option A: take every second pixel and zero-pad the new channels (no parameters).
 *   0.27 M parameters (Table 6).
 * - `resnet18`: He et al.'s 18-layer ImageNet ResNet (Table 1: [2, 2, 2, 2] basic blocks of 64,
 *   128, 256, 512 filters, projection shortcuts (option B, 1x1 conv + batch norm) where the shape
 *   changes) with the CIFAR stem used throughout the FL literature (a 3x3 stride-1 conv instead of
 *   7x7 stride 2, no max-pool; kuangliu/pytorch-cifar's ResNet18): 11.17 M parameters.
 *
 * Convolutions have no bias (batch norm follows each). Stride-2 3x3 convolutions pad one pixel
 * on every side first, as PyTorch's `padding=1` does; tfjs' `same` would pad only the bottom
 * and right and shift the sampled grid by one pixel against the shortcut's. The body is
 * everything up to the pooled features (`gap`); the head is the classifier `fc`.
 */

/** Seeds for the initializers, all derived from the model seed (equal seeds, equal weights). */
function seeder(ctx: ModelContext): () => number {
  let k = 0;
  const base = (ctx.seed ?? 0) * 1009;
  return () => base + ++k;
}

type Tensor = tfl.SymbolicTensor;

function apply(layer: tfl.layers.Layer, x: Tensor): Tensor {
  return layer.apply(x) as Tensor;
}

/** Conv (no bias, He-normal) + batch norm (PyTorch's momentum 0.1 and epsilon 1e-5). */
function convBn(x: Tensor, name: string, bnName: string, filters: number, kernelSize: number, stride: number, next: () => number): Tensor {
  let y = x;
  if (stride > 1 && kernelSize > 1) {
    const p = (kernelSize - 1) / 2;
    y = apply(tfl.layers.zeroPadding2d({ name: `${name}.pad`, padding: [[p, p], [p, p]] }), y);
  }
  y = apply(
    tfl.layers.conv2d({
      name,
      filters,
      kernelSize,
      strides: stride,
      padding: stride > 1 || kernelSize === 1 ? 'valid' : 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: next() }),
    }),
    y,
  );
  return apply(tfl.layers.batchNormalization({ name: bnName, momentum: 0.9, epsilon: 1e-5 }), y);
}

/**
 * Option A shortcut: `x[:, ::2, ::2, :]` with `extra / 2` zero channels on each side, as in the
 * reference CIFAR implementations (channels are padded through a transpose because
 * zeroPadding2d pads only spatial axes).
 */
function paddedIdentity(x: Tensor, name: string, stride: number, extra: number): Tensor {
  let y = stride > 1 ? apply(tfl.layers.averagePooling2d({ name: `${name}.subsample`, poolSize: 1, strides: stride, padding: 'valid' }), x) : x;
  if (extra > 0) {
    const half = extra / 2;
    y = apply(tfl.layers.permute({ name: `${name}.to_chw`, dims: [3, 1, 2] }), y);
    y = apply(tfl.layers.zeroPadding2d({ name: `${name}.pad`, padding: [[half, extra - half], [0, 0]] }), y);
    y = apply(tfl.layers.permute({ name: `${name}.to_hwc`, dims: [2, 3, 1] }), y);
  }
  return y;
}

interface BlockSpec {
  name: string;
  inFilters: number;
  filters: number;
  stride: number;
  shortcut: 'A' | 'B';
}

/** A basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)). */
function basicBlock(x: Tensor, b: BlockSpec, next: () => number): Tensor {
  let y = convBn(x, `${b.name}.conv1`, `${b.name}.bn1`, b.filters, 3, b.stride, next);
  y = apply(tfl.layers.reLU({ name: `${b.name}.relu1` }), y);
  y = convBn(y, `${b.name}.conv2`, `${b.name}.bn2`, b.filters, 3, 1, next);
  let s = x;
  if (b.stride !== 1 || b.inFilters !== b.filters) {
    s = b.shortcut === 'A'
      ? paddedIdentity(x, `${b.name}.shortcut`, b.stride, b.filters - b.inFilters)
      : convBn(x, `${b.name}.shortcut.0`, `${b.name}.shortcut.1`, b.filters, 1, b.stride, next);
  }
  const sum = tfl.layers.add({ name: `${b.name}.add` }).apply([y, s]) as Tensor;
  return apply(tfl.layers.reLU({ name: `${b.name}.relu2` }), sum);
}

interface ResNetSpec {
  name: string;
  stemFilters: number;
  stages: Array<{ filters: number; blocks: number; stride: number }>;
  shortcut: 'A' | 'B';
}

function buildResNet(spec: ResNetSpec, ctx: ModelContext): tfl.LayersModel {
  const next = seeder(ctx);
  const input = tfl.input({ name: 'input', shape: ctx.inputShape });
  let x = convBn(input, 'conv1', 'bn1', spec.stemFilters, 3, 1, next);
  x = apply(tfl.layers.reLU({ name: 'relu' }), x);
  let inFilters = spec.stemFilters;
  spec.stages.forEach((stage, s) => {
    for (let i = 0; i < stage.blocks; i++) {
      const block = { name: `layer${s + 1}.${i}`, inFilters, filters: stage.filters, stride: i === 0 ? stage.stride : 1, shortcut: spec.shortcut };
      x = basicBlock(x, block, next);
      inFilters = stage.filters;
    }
  });
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const logits = apply(
    tfl.layers.dense({
      name: 'fc',
      units: ctx.numClasses,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: next() }),
      biasInitializer: 'zeros',
    }),
    x,
  );
  return tfl.model({ name: spec.name, inputs: input, outputs: logits });
}

/** ResNet-20 for CIFAR (He et al. 2016, Sec. 4.2; 269,722 parameters for 10 classes). */
export const resnet20: ModelFactory = (_args, ctx) =>
  buildResNet(
    {
      name: 'resnet20',
      stemFilters: 16,
      stages: [
        { filters: 16, blocks: 3, stride: 1 },
        { filters: 32, blocks: 3, stride: 2 },
        { filters: 64, blocks: 3, stride: 2 },
      ],
      shortcut: 'A',
    },
    ctx,
  );

/** ResNet-18 with the CIFAR stem (3x3 conv, no max-pool; 11,173,962 parameters for 10 classes). */
export const resnet18: ModelFactory = (_args, ctx) =>
  buildResNet(
    {
      name: 'resnet18',
      stemFilters: 64,
      stages: [
        { filters: 64, blocks: 2, stride: 1 },
        { filters: 128, blocks: 2, stride: 2 },
        { filters: 256, blocks: 2, stride: 2 },
        { filters: 512, blocks: 2, stride: 2 },
      ],
      shortcut: 'B',
    },
    ctx,
  );
