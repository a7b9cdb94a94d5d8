import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const TRAINER = 'node_id: trainer\nrole: trainer\n';

function load(body: string) {
  const dir = writeTree({ 'trainer.yaml': `${TRAINER}${body}` });
  return { file: join(dir, 'trainer.yaml'), load: () => loadConfig(join(dir, 'trainer.yaml'), { env: {} }) };
}

describe('secure_aggregation', () => {
  it('is off when absent; present, it is enabled with defaults', () => {
    expect(load('').load().secure_aggregation).toBeUndefined();
    expect(load('secure_aggregation: {}\n').load().secure_aggregation).toEqual({
      enabled: true,
      threshold: 0.7,
      neighbours: 100,
      clip_range: 8,
      quantization_bits: 32,
    });
  });

  it('takes the threshold as a fraction or a count', () => {
    expect(load('secure_aggregation: {threshold: 0.6}\n').load().secure_aggregation?.threshold).toBe(0.6);
    expect(load('secure_aggregation: {threshold: 7}\n').load().secure_aggregation?.threshold).toBe(7);
  });

  it('refuses bad values, naming the key path', () => {
    const bits = load('secure_aggregation: {quantization_bits: 40}\n');
    expect(configError(bits.load).message).toContain(`${bits.file}: secure_aggregation.quantization_bits`);
    const threshold = load('secure_aggregation: {threshold: 1.5}\n');
    expect(configError(threshold.load).message).toContain(`${threshold.file}: secure_aggregation.threshold`);
    const clip = load('secure_aggregation: {clip_range: 0}\n');
    expect(configError(clip.load).message).toContain(`${clip.file}: secure_aggregation.clip_range`);
    const unknown = load('secure_aggregation: {neighbors: 3}\n');
    expect(configError(unknown.load).message).toContain('secure_aggregation');
  });
});
