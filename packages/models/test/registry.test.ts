import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, listModels, registerBuiltinModels, registerModel, type ModelFactory } from '../src/index.js';
import { useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

describe('model registry', () => {
  it('lists the built-in types and is idempotent', () => {
    registerBuiltinModels();
    registerBuiltinModels();
    expect(listModels()).toEqual(expect.arrayContaining(['cifar10_cnn', 'simple_cnn', 'lenet', 'mnist_cnn', 'mlp', 'logistic']));
  });

  it('rejects an unknown type with the list of registered types', () => {
    expect(() => createModel({ type: 'resnet9000' })).toThrow(/model.type: unknown model type "resnet9000"; registered types: .*cifar10_cnn.*lenet.*mlp/);
    expect(() => createModel({ type: 'lenet5' })).toThrow(/; did you mean "lenet"\?$/);
  });

  it('validates args and names the offending key', () => {
    expect(() => createModel({ type: 'cifar10_cnn', args: { dropout: 1.5 } })).toThrow(/model "cifar10_cnn": model.args.dropout must be < 1, got 1.5/);
    expect(() => createModel({ type: 'mlp', args: { hidden: [200, 'x'] } })).toThrow(/model.args.hidden\[1\] must be an integer, got string "x"/);
    expect(() => createModel({ type: 'lenet', args: { num_clases: 10 } })).toThrow(/model.args.num_clases is not a known argument \(allowed: .*\); did you mean "num_classes"\?/);
    expect(() => createModel({ type: 'lenet', args: { num_classes: 0 } })).toThrow(/model.args.num_classes must be >= 1, got 0/);
  });

  it('registers a custom model from outside and passes it the resolved context', () => {
    let seen: unknown;
    const factory: ModelFactory = (args, ctx) => {
      seen = { args, ctx };
      const m = tfl.sequential();
      m.add(tfl.layers.dense({ name: 'out', units: ctx.numClasses, inputShape: ctx.inputShape }));
      return m;
    };
    registerModel('test_linear', factory, {
      argsSchema: { type: 'object', properties: { width: { type: 'integer' } }, additionalProperties: false },
      defaultInputShape: [7],
    });
    registerModel('test_linear', factory); // same factory again: no-op
    expect(() => registerModel('test_linear', () => tfl.sequential())).toThrow(/already registered/);
    expect(listModels()).toContain('test_linear');

    const m = createModel({ type: 'test_linear', args: { width: 3 } }, { numClasses: 4, seed: 9 });
    expect(seen).toEqual({ args: { width: 3 }, ctx: { inputShape: [7], numClasses: 4, seed: 9 } });
    expect(m.numParams).toBe(7 * 4 + 4);
    m.dispose();
    expect(() => createModel({ type: 'test_linear', args: { depth: 3 } })).toThrow(/model.args.depth is not a known argument \(allowed: num_classes, input_shape, seed, width\)/);
  });

  it('takes the input shape from args, else the context, else the default', () => {
    const a = createModel({ type: 'mlp', args: { input_shape: [5], hidden: [] } }, { inputShape: [9] });
    const b = createModel({ type: 'mlp', args: { hidden: [] } }, { inputShape: [9] });
    const c = createModel({ type: 'mlp', args: { hidden: [] } });
    expect([a.inputShape, b.inputShape, c.inputShape]).toEqual([[5], [9], [60]]);
    expect([a.numParams, b.numParams, c.numParams]).toEqual([5 * 10 + 10, 9 * 10 + 10, 60 * 10 + 10]);
    [a, b, c].forEach((m) => m.dispose());
  });
});

describe('built-in models', () => {
  it('cifar10_cnn has about 1.56 M parameters in the documented layout', () => {
    const m = createModel({ type: 'cifar10_cnn' });
    // conv: 3*3*cin*cout + cout; bn: 4*c (gamma, beta trainable; moving mean/var not); fc: 512*10 + 10
    const convs = [3 * 3 * 3 * 64 + 64, 3 * 3 * 64 * 128 + 128, 3 * 3 * 128 * 256 + 256, 3 * 3 * 256 * 512 + 512];
    const bnTrainable = 2 * (64 + 128 + 256 + 512);
    const trainable = convs.reduce((a, b) => a + b) + bnTrainable + 512 * 10 + 10;
    expect(trainable).toBe(1_558_026);
    expect(m.layout.filter((s) => s.trainable).reduce((a, s) => a + s.size, 0)).toBe(trainable);
    expect(m.numParams).toBe(trainable + bnTrainable);
    expect(m.numParams / 1e6).toBeCloseTo(1.56, 2);
    expect(m.layout.slice(0, 7).map((s) => [s.name, s.shape, s.offset, s.trainable, s.isNormalization])).toEqual([
      ['conv1/kernel', [3, 3, 3, 64], 0, true, false],
      ['conv1/bias', [64], 1728, true, false],
      ['bn1/gamma', [64], 1792, true, true],
      ['bn1/beta', [64], 1856, true, true],
      ['bn1/moving_mean', [64], 1920, false, true],
      ['bn1/moving_variance', [64], 1984, false, true],
      ['conv2/kernel', [3, 3, 64, 128], 2048, true, false],
    ]);
    expect(m.layout.at(-1)).toMatchObject({ name: 'fc/bias', shape: [10], offset: m.numParams - 10, trainable: true, isNormalization: false });
    m.dispose();
  });

  it('layout offsets are contiguous and sizes match shapes', () => {
    for (const type of ['cifar10_cnn', 'simple_cnn', 'lenet', 'mlp', 'logistic']) {
      const m = createModel({ type });
      let offset = 0;
      for (const s of m.layout) {
        expect(s.offset).toBe(offset);
        expect(s.size).toBe(s.shape.reduce((a, b) => a * b, 1));
        offset += s.size;
      }
      expect(offset).toBe(m.numParams);
      expect(new Set(m.layout.map((s) => s.name)).size).toBe(m.layout.length);
      m.dispose();
    }
  });

  it('lenet matches the hand count 44,426', () => {
    const m = createModel({ type: 'lenet' });
    // conv1 6@5x5x1, conv2 16@5x5x6, fc 256->120->84->10
    expect(m.numParams).toBe(6 * 25 + 6 + (16 * 6 * 25 + 16) + (16 * 4 * 4 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10));
    expect(m.numParams).toBe(44_426);
    expect(m.inputShape).toEqual([28, 28, 1]);
    m.dispose();
  });

  it('fmnist_cnn matches the hand count 421,642 (the CNN of bench:federation)', () => {
    const m = createModel({ type: 'fmnist_cnn' });
    // conv1 32@3x3x1 same, conv2 64@3x3x32 same, two 2x2 pools, fc 7*7*64 -> 128 -> 10
    expect(m.numParams).toBe(32 * 9 + 32 + (64 * 9 * 32 + 64) + (7 * 7 * 64 * 128 + 128) + (128 * 10 + 10));
    expect(m.numParams).toBe(421_642);
    expect(m.model.layers.map((l) => l.getClassName())).toContain('Dropout');
    m.dispose();
  });

  it('simple_cnn, mlp and logistic have the expected sizes', () => {
    const counts = Object.fromEntries(
      ['simple_cnn', 'mlp', 'logistic'].map((type) => {
        const m = createModel({ type });
        const n = m.numParams;
        m.dispose();
        return [type, n];
      }),
    );
    expect(counts).toEqual({
      simple_cnn: 896 + 18_496 + 36_928 + (1024 * 128 + 128) + (128 * 10 + 10),
      mlp: 60 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10,
      logistic: 60 * 10 + 10,
    });
  });

  it('initialises deterministically from the seed', () => {
    const a = createModel({ type: 'lenet' });
    const b = createModel({ type: 'lenet' });
    const c = createModel({ type: 'lenet', args: { seed: 7 } });
    const d = createModel({ type: 'lenet' }, { seed: 7 });
    const [wa, wb, wc, wd] = [a, b, c, d].map((m) => m.getWeights());
    expect(Buffer.from(wa.buffer).equals(Buffer.from(wb.buffer))).toBe(true);
    expect(Buffer.from(wc.buffer).equals(Buffer.from(wd.buffer))).toBe(true);
    expect(Buffer.from(wa.buffer).equals(Buffer.from(wc.buffer))).toBe(false);
    [a, b, c, d].forEach((m) => m.dispose());
    expect(tf.getBackend()).toBe('cpu');
  });
});
