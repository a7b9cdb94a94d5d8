import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy } from '../src/batching.js';
import { weightRefs } from '../src/parallel/shard.js';
import { createModel, type DataSource, type FedModel, type TensorSpec } from '../src/index.js';
import { initWasmBackend } from '../src/wasm/index.js';
import { lcg } from './helpers.js';

// The patched wasm backend: the pure-JS cpu one needs over a minute for one resnet20 step.
beforeAll(async () => {
  tf.env().set('IS_TEST', true);
  await initWasmBackend();
});

/** Trainable values of a model (moving statistics left out), as papers count parameters. */
function trainableCount(m: FedModel): number {
  return m.layout.filter((s) => s.trainable).reduce((a, s) => a + s.size, 0);
}

/** Batch-norm channels: each has gamma, beta (trainable) and a moving mean and variance. */
function bnChannels(m: FedModel): number {
  return m.layout.filter((s) => s.name.endsWith('/gamma')).reduce((a, s) => a + s.size, 0);
}

function randomData(n: number, shape: number[], numClasses: number, seed: number): DataSource {
  const rand = lcg(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const features = Float32Array.from({ length: n * size }, () => rand() * 2 - 1);
  const labels = Int32Array.from({ length: n }, (_, i) => i % numClasses);
  return { features, labels, sampleShape: shape, numClasses, length: n };
}

/** Mean cross-entropy of the whole data set as one batch in training mode (batch statistics). */
function trainingModeLoss(m: FedModel, data: DataSource): number {
  return tf.tidy(() => {
    const x = tf.tensor(data.features, [data.length, ...data.sampleShape]);
    const y = tf.oneHot(tf.tensor1d(data.labels, 'int32'), data.numClasses);
    return crossEntropy(m.model.apply(x, { training: true }) as tf.Tensor, y).dataSync()[0];
  });
}

/** The named layers' outputs for one input batch, in inference mode. */
function layerOutputs(m: FedModel, names: string[], x: tf.Tensor): tf.Tensor[] {
  const probe = tfl.model({ inputs: m.model.inputs, outputs: names.map((n) => m.model.getLayer(n).output as tfl.SymbolicTensor) });
  return probe.predict(x) as tf.Tensor[];
}

describe('resnet20 (He et al. 2016, Sec. 4.2)', () => {
  it('has 269,722 parameters for 10 classes: the 0.27 M of He et al. Table 6', () => {
    const m = createModel({ type: 'resnet20' });
    // Convs without bias: stem 3->16, stage 1 six 16->16, stage 2 16->32 then five 32->32,
    // stage 3 32->64 then five 64->64; option A shortcuts have no weights; fc 64->10.
    const convs = 9 * (3 * 16 + 6 * 16 * 16 + 16 * 32 + 5 * 32 * 32 + 32 * 64 + 5 * 64 * 64);
    const bn = 16 * 7 + 32 * 6 + 64 * 6; // stem + two per block
    expect(bnChannels(m)).toBe(bn);
    expect(convs + 2 * bn + 64 * 10 + 10).toBe(269_722);
    expect(trainableCount(m)).toBe(269_722);
    expect(m.numParams).toBe(269_722 + 2 * bn);
    expect(m.layout.some((s) => s.name.includes('shortcut'))).toBe(false);
    expect(m.inputShape).toEqual([32, 32, 3]);
    m.dispose();
  });

  it('grows only the classifier for 100 classes', () => {
    const m = createModel({ type: 'resnet20', args: { num_classes: 100 } });
    expect(trainableCount(m)).toBe(269_722 + 90 * 65);
    expect(m.numClasses).toBe(100);
    expect(m.layout.at(-2)).toMatchObject({ name: 'fc/kernel', shape: [64, 100] });
    m.dispose();
  });

  it('names its weights like the PyTorch reference and flags every batch-norm tensor', () => {
    const m = createModel({ type: 'resnet20' });
    const names = m.layout.map((s) => s.name);
    expect(names.slice(0, 5)).toEqual(['conv1/kernel', 'bn1/gamma', 'bn1/beta', 'bn1/moving_mean', 'bn1/moving_variance']);
    expect(names).toContain('layer3.2.conv2/kernel');
    expect(names.slice(-2)).toEqual(['fc/kernel', 'fc/bias']);
    for (const s of m.layout) expect(s.isNormalization).toBe(/(^|\.)bn\d\//.test(s.name));
    expect(m.layout.filter((s) => s.isNormalization && !s.trainable).length).toBe(19 * 2);
    m.dispose();
  });

  it('gives [batch, classes] logits, also for 28x28x1 inputs', async () => {
    const m = createModel({ type: 'resnet20' });
    const probs = await m.predict(randomData(2, [32, 32, 3], 10, 1).features, 2);
    expect(probs.length).toBe(20);
    expect(probs.slice(0, 10).reduce((a, b) => a + b)).toBeCloseTo(1, 5);
    m.dispose();
    const small = createModel({ type: 'resnet20', args: { input_shape: [28, 28, 1] } });
    expect(small.model.outputs[0].shape).toEqual([null, 10]);
    expect((await small.predict(new Float32Array(784), 1)).length).toBe(10);
    small.dispose();
  });

  it('option A shortcut: every second pixel, the new channels zero on both sides', () => {
    const m = createModel({ type: 'resnet20', args: { seed: 3 } });
    // Silence layer2.0's residual branch (bn2 scale and shift 0) so the sum is the shortcut alone.
    const bn2 = m.model.getLayer('layer2.0.bn2');
    bn2.setWeights(bn2.getWeights().map((w, i) => (i < 2 ? tf.zerosLike(w) : w)));
    const x = tf.tensor(randomData(1, [32, 32, 3], 10, 2).features, [1, 32, 32, 3]);
    const [before, sum] = layerOutputs(m, ['layer1.2.relu2', 'layer2.0.add'], x);
    expect(sum.shape).toEqual([1, 16, 16, 32]);
    const a = before.arraySync() as number[][][][];
    const s = sum.arraySync() as number[][][][];
    let checked = 0;
    for (let i = 0; i < 16; i += 5) {
      for (let j = 0; j < 16; j += 3) {
        for (let c = 0; c < 32; c++) {
          const want = c >= 8 && c < 24 ? a[0][2 * i][2 * j][c - 8] : 0;
          expect(s[0][i][j][c]).toBe(want);
          checked++;
        }
      }
    }
    expect(checked).toBe(4 * 6 * 32);
    expect(a[0].flat(2).some((v) => v > 0)).toBe(true);
    tf.dispose([x, before, sum]);
    m.dispose();
  });

  it('stride-2 convs pad one pixel on every side, as PyTorch padding=1 does', () => {
    const m = createModel({ type: 'resnet20', args: { seed: 4 } });
    const x = tf.tensor(randomData(1, [32, 32, 3], 10, 5).features, [1, 32, 32, 3]);
    const [input, out] = layerOutputs(m, ['layer1.2.relu2', 'layer2.0.conv1'], x);
    const a = input.arraySync() as number[][][][];
    const o = out.arraySync() as number[][][][];
    const k = m.model.getLayer('layer2.0.conv1').getWeights()[0].arraySync() as number[][][][];
    // Output (i, j) sees input rows 2i-1..2i+1 and columns 2j-1..2j+1, zeros outside.
    const at = (r: number, c: number, ch: number): number => (r < 0 || c < 0 || r > 31 || c > 31 ? 0 : a[0][r][c][ch]);
    for (const [i, j, co] of [[0, 0, 0], [0, 15, 5], [15, 15, 31], [7, 3, 12]]) {
      let want = 0;
      for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) for (let ci = 0; ci < 16; ci++) want += at(2 * i + kh - 1, 2 * j + kw - 1, ci) * k[kh][kw][ci][co];
      expect(o[0][i][j][co]).toBeCloseTo(want, 4);
    }
    tf.dispose([x, input, out]);
    m.dispose();
  });

  it('one SGD step on a tiny batch lowers its loss', async () => {
    const m = createModel({ type: 'resnet20' });
    const data = randomData(4, [32, 32, 3], 10, 7);
    const before = (await m.train(data, { epochs: 1, batchSize: 4, lr: 0.05, optimizer: 'sgd', seed: 1 })).loss;
    expect(before).toBeGreaterThan(0);
    expect(trainingModeLoss(m, data)).toBeLessThan(before);
    m.dispose();
  });

  it('one step on wasm (patched kernels) ends where the cpu backend does', async () => {
    const data = randomData(2, [8, 8, 3], 10, 11);
    const stepOn = async (backend: string, init?: Float32Array): Promise<Float32Array> => {
      await tf.setBackend(backend);
      const m = createModel({ type: 'resnet20', args: { input_shape: [8, 8, 3], seed: 2 } });
      if (init) m.setWeights(init);
      await m.train(data, { epochs: 1, batchSize: 2, lr: 0.1, optimizer: 'sgd', momentum: 0.9, seed: 3 });
      const w = m.getWeights();
      m.dispose();
      return w;
    };
    try {
      const init = createModel({ type: 'resnet20', args: { input_shape: [8, 8, 3], seed: 2 } });
      const start = init.getWeights();
      init.dispose();
      const onCpu = await stepOn('cpu', start);
      const onWasm = await stepOn('wasm', start);
      let maxDiff = 0;
      let moved = 0;
      for (let i = 0; i < start.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(onCpu[i] - onWasm[i]));
        moved = Math.max(moved, Math.abs(onCpu[i] - start[i]));
      }
      expect(moved).toBeGreaterThan(1e-3);
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('initialises from the seed and survives the JSON round trip worker threads use', async () => {
    const [a, b, c] = [createModel({ type: 'resnet20' }), createModel({ type: 'resnet20' }), createModel({ type: 'resnet20', args: { seed: 1 } })];
    expect(Buffer.from(a.getWeights().buffer).equals(Buffer.from(b.getWeights().buffer))).toBe(true);
    expect(Buffer.from(a.getWeights().buffer).equals(Buffer.from(c.getWeights().buffer))).toBe(false);
    const rebuilt = await tfl.models.modelFromJSON({ modelTopology: JSON.parse(a.model.toJSON(null, true) as string) });
    const plain = (s: TensorSpec): unknown[] => [s.name, s.shape, s.offset, s.trainable, s.isNormalization];
    expect(weightRefs(rebuilt).map((r) => plain(r.spec))).toEqual(a.layout.map(plain));
    rebuilt.dispose();
    [a, b, c].forEach((m) => m.dispose());
  });

  it('validates its args like the other models', () => {
    expect(() => createModel({ type: 'resnet20', args: { dropout: 0.5 } })).toThrow(/model.args.dropout is not a known argument \(allowed: /);
    expect(() => createModel({ type: 'resnet18', args: { num_classes: 0 } })).toThrow(/model.args.num_classes must be >= 1, got 0/);
    expect(() => createModel({ type: 'resnet18', args: { num_classes: 10.5 } })).toThrow(/model.args.num_classes must be an integer, got number 10.5/);
  });
});

describe('resnet body/head split', () => {
  it.each([
    ['resnet20', 64],
    ['resnet18', 512],
  ])('%s: the head is fc, the body ends at the pooled %i features', (type, width) => {
    const m = createModel({ type, args: { input_shape: [8, 8, 3], num_classes: 7 } });
    expect(m.split.headLayers).toEqual(['fc']);
    expect(m.hasDefaultHead).toBe(true);
    expect(m.layout.filter((s) => s.isHead).map((s) => [s.name, s.shape])).toEqual([
      ['fc/kernel', [width, 7]],
      ['fc/bias', [7]],
    ]);
    const x = tf.tensor(randomData(2, [8, 8, 3], 7, 4).features, [2, 8, 8, 3]);
    const { features, logits } = m.split.forward(x, false);
    const whole = m.model.predict(x) as tf.Tensor;
    expect(features.shape).toEqual([2, width]);
    expect(tf.max(tf.abs(tf.sub(logits, whole))).dataSync()[0]).toBeLessThan(1e-6);
    tf.dispose([x, features, logits, whole]);
    m.dispose();
  });
});

describe('resnet18, CIFAR stem', () => {
  it('has 11,173,962 parameters for 10 classes (11.17 M) and 11,220,132 for 100', () => {
    const m = createModel({ type: 'resnet18' });
    const c3 = (i: number, o: number): number => 9 * i * o;
    const convs =
      c3(3, 64) +
      4 * c3(64, 64) +
      (c3(64, 128) + 3 * c3(128, 128) + 64 * 128) +
      (c3(128, 256) + 3 * c3(256, 256) + 128 * 256) +
      (c3(256, 512) + 3 * c3(512, 512) + 256 * 512);
    const bn = 64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512; // stem, two per block, one per projection
    expect(bnChannels(m)).toBe(bn);
    expect(convs + 2 * bn + 512 * 10 + 10).toBe(11_173_962);
    expect(trainableCount(m)).toBe(11_173_962);
    expect(m.numParams).toBe(11_173_962 + 2 * bn);
    expect(m.layout.filter((s) => s.name.includes('shortcut')).map((s) => s.name.split('/')[0])).toEqual(
      ['layer2', 'layer3', 'layer4'].flatMap((l) => [`${l}.0.shortcut.0`, ...Array(4).fill(`${l}.0.shortcut.1`)]),
    );
    m.dispose();
    const m100 = createModel({ type: 'resnet18', args: { num_classes: 100 } });
    expect(trainableCount(m100)).toBe(11_220_132);
    m100.dispose();
  });

  it('keeps the map at full size through the stem (no max-pool) and trains one step', async () => {
    // 8x8 inputs keep the one step affordable on the pure-JS backend; the weights do not depend on it.
    const m = createModel({ type: 'resnet18', args: { input_shape: [8, 8, 3] } });
    expect(m.model.getLayer('layer1.1.relu2').output).toMatchObject({ shape: [null, 8, 8, 64] });
    expect(m.model.getLayer('layer4.1.relu2').output).toMatchObject({ shape: [null, 1, 1, 512] });
    const data = randomData(2, [8, 8, 3], 10, 9);
    const before = (await m.train(data, { epochs: 1, batchSize: 2, lr: 0.01, optimizer: 'sgd', seed: 1 })).loss;
    expect(trainingModeLoss(m, data)).toBeLessThan(before);
    m.dispose();
  });
});

/** Debian's python3-torch, where installed (the federation bench's baseline uses it too). */
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

/** Our logits in inference and training mode, written with the weights for the PyTorch script. */
function writeReferenceCase(m: FedModel, dir: string, seed: number): void {
  const rand = lcg(seed);
  const flat = m.getWeights();
  // Batch-norm tensors away from their initial 1/0 so inference mode exercises them.
  for (const s of m.layout.filter((t) => t.isNormalization)) {
    const [lo, hi] = /gamma|variance/.test(s.name) ? [0.5, 1.5] : [-0.2, 0.2];
    for (let i = s.offset; i < s.offset + s.size; i++) flat[i] = lo + (hi - lo) * rand();
  }
  m.setWeights(flat);
  const input = randomData(2, [32, 32, 3], m.numClasses, seed).features;
  const logits = (training: boolean): Float32Array =>
    tf.tidy(() => (m.model.apply(tf.tensor(input, [2, 32, 32, 3]), { training }) as tf.Tensor).dataSync() as Float32Array);
  writeFileSync(join(dir, 'layout.json'), JSON.stringify(m.layout));
  writeFileSync(join(dir, 'weights.bin'), flat);
  writeFileSync(join(dir, 'input.bin'), input);
  writeFileSync(join(dir, 'eval.bin'), logits(false));
  writeFileSync(join(dir, 'train.bin'), logits(true));
}

describe.skipIf(!hasTorch)('the ResNets equal the PyTorch reference implementations (python3-torch)', () => {
  it.each(['resnet20', 'resnet18'])('%s: same logits from the same weights, inference and training mode', (type) => {
    const dir = mkdtempSync(join(tmpdir(), 'oiafed-resnet-'));
    try {
      const m = createModel({ type, args: { seed: 5, num_classes: 100 } });
      writeReferenceCase(m, dir, 12);
      m.dispose();
      const script = fileURLToPath(new URL('./resnet-torch-reference.py', import.meta.url));
      const run = spawnSync(PYTHON, [script, dir, type], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      const result = JSON.parse(run.stdout) as Record<'eval' | 'train', { max_diff: number; max_abs: number }>;
      for (const mode of ['eval', 'train'] as const) {
        expect(result[mode].max_abs).toBeGreaterThan(0.1);
        expect(result[mode].max_diff).toBeLessThan(1e-4 * Math.max(1, result[mode].max_abs));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
