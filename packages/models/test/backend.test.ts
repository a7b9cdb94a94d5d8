import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError, createModel, selectBackend, type Logger } from '../src/index.js';
import { blobs } from './helpers.js';

/** Logger that records what selectBackend says. */
function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (msg: string) => void lines.push(`${level}: ${msg}`);
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

const saved = { backend: process.env.OIAFED_BACKEND, cuda: process.env.CUDA_VISIBLE_DEVICES };

beforeEach(() => {
  delete process.env.OIAFED_BACKEND;
  delete process.env.CUDA_VISIBLE_DEVICES;
});

afterEach(() => {
  for (const [key, value] of [['OIAFED_BACKEND', saved.backend], ['CUDA_VISIBLE_DEVICES', saved.cuda]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('selectBackend', () => {
  it('cuda:N without @tensorflow/tfjs-node-gpu fails with what to install', async () => {
    const err = await selectBackend('cuda:0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    const msg = (err as Error).message;
    expect(msg).toContain("device 'cuda:0' needs @tensorflow/tfjs-node-gpu@4.22.0");
    expect(msg).toContain('npm install @tensorflow/tfjs-node-gpu@4.22.0');
    expect(msg).toContain('CUDA 11.2 and cuDNN 8.1');
    expect(process.env.CUDA_VISIBLE_DEVICES).toBe('0');
    await expect(selectBackend('cuda')).rejects.toThrow(BackendUnavailableError);
  });

  it('maps cuda:N onto an already restricted CUDA_VISIBLE_DEVICES list', async () => {
    process.env.CUDA_VISIBLE_DEVICES = '3,5';
    await expect(selectBackend('cuda:1')).rejects.toThrow(/CUDA_VISIBLE_DEVICES|tfjs-node-gpu/);
    expect(process.env.CUDA_VISIBLE_DEVICES).toBe('5');
    process.env.CUDA_VISIBLE_DEVICES = '3';
    await expect(selectBackend('cuda:2')).rejects.toThrow("device 'cuda:2': CUDA_VISIBLE_DEVICES=3 lists only 1 GPU(s)");
  });

  it('rejects unknown device strings and OIAFED_BACKEND values', async () => {
    await expect(selectBackend('gpu' as 'cpu')).rejects.toThrow(`device: expected 'auto', 'cpu', 'cuda' or 'cuda:N' (N = GPU index), got "gpu"`);
    process.env.OIAFED_BACKEND = 'webgl';
    await expect(selectBackend('cpu')).rejects.toThrow(`OIAFED_BACKEND: expected 'cpu' or 'wasm' (or unset), got "webgl"`);
  });

  it('cpu falls back to wasm with the patched kernels, logs why, and answers the same twice', async () => {
    const logger = recorder();
    const info = await selectBackend('cpu', { logger });
    expect(info).toMatchObject({ backend: 'wasm', device: 'cpu', package: '@tensorflow/tfjs-backend-wasm', patchedKernels: true });
    expect(info.detail).toContain('@tensorflow/tfjs-node: not installed');
    expect(tf.getBackend()).toBe('wasm');
    expect(logger.lines).toEqual([expect.stringMatching(/^info: compute backend: wasm on cpu .*tfjs-node: not installed/)]);
    expect(await selectBackend('cpu', { logger })).toEqual(info);

    const auto = await selectBackend('auto');
    expect(auto).toMatchObject({ backend: 'wasm', patchedKernels: true });
    expect(auto.detail).toContain("device 'auto': no GPU (@tensorflow/tfjs-node-gpu: not installed)");
  });

  it('OIAFED_BACKEND forces the backend whatever the device', async () => {
    process.env.OIAFED_BACKEND = 'cpu';
    const logger = recorder();
    const cpu = await selectBackend('cuda:0', { logger });
    expect(cpu).toMatchObject({ backend: 'cpu', device: 'cpu', patchedKernels: false });
    expect(tf.getBackend()).toBe('cpu');
    expect(logger.lines[0]).toMatch(/^info: compute backend: cpu .*OIAFED_BACKEND=cpu forces/);
    process.env.OIAFED_BACKEND = 'wasm';
    expect(await selectBackend('cpu')).toMatchObject({ backend: 'wasm', patchedKernels: true });
    expect(tf.getBackend()).toBe('wasm');
  });

  it('trains on the selected wasm backend like on the pure-JS backend', async () => {
    // LeNet exercises conv and max-pool gradients (the kernels wasm needs patched).
    const data = blobs(4, [28, 28, 1], 10, 2);
    const runOn = async (backend: 'cpu' | 'wasm') => {
      process.env.OIAFED_BACKEND = backend;
      await selectBackend('cpu');
      const model = createModel({ type: 'lenet' });
      const opts = { epochs: 1, batchSize: 2, lr: 0.05, optimizer: 'sgd', momentum: 0.9, seed: 1 } as const;
      const w0 = model.getWeights();
      await model.train(data, opts); // warm-up: backends may cache per-shape state on first use
      model.setWeights(w0);
      const before = tf.memory();
      const r = await model.train(data, opts);
      const w = model.getWeights();
      const e = await model.evaluate(data);
      const after = tf.memory();
      // no leaked tensors, and no backend buffers left behind by any (patched) kernel
      expect([after.numTensors, after.numDataBuffers]).toEqual([before.numTensors, before.numDataBuffers]);
      model.dispose();
      return { r, w, e };
    };
    const cpu = await runOn('cpu');
    const wasm = await runOn('wasm');
    let maxDiff = 0;
    for (let i = 0; i < cpu.w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(cpu.w[i] - wasm.w[i]));
    expect(maxDiff).toBeLessThan(1e-4);
    expect(wasm.r.loss).toBeCloseTo(cpu.r.loss, 4);
    expect(wasm.e.accuracy).toBe(cpu.e.accuracy);
  });
});
