import { describe, expect, it } from 'vitest';
import { describeValue, parseArgs, schemaErrors, silentLogger, type ArgsSchema } from '../src/index.js';

const schema: ArgsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['level'],
  properties: {
    level: { type: 'string', enum: ['low', 'high'] },
    mu: { type: 'number', minimum: 0, default: 0.01 },
    beta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.5 },
    f: { type: 'integer', maximum: 3 },
    hidden: { type: 'array', minItems: 1, maxItems: 3, items: { type: 'integer', minimum: 1 } },
    seed: { type: ['integer', 'null'] },
    layers: { type: 'object', additionalProperties: { type: 'boolean' } },
  },
};

describe('schemaErrors', () => {
  it('names the key path, the expectation and the value for every problem', () => {
    expect(
      schemaErrors(schema, {
        level: 'mid',
        mu: -1,
        beta: 0.5,
        f: 1.5,
        hidden: [200, 'x', 0, 4],
        seed: 'a',
        layers: { fc: 'yes' },
        levels: 1,
      }),
    ).toEqual([
      'args.level must be one of "low", "high", got string "mid"',
      'args.mu must be >= 0, got -1',
      'args.beta must be < 0.5, got 0.5',
      'args.f must be an integer, got number 1.5',
      'args.hidden must have at most 3 items, got 4',
      'args.hidden[1] must be an integer, got string "x"',
      'args.hidden[2] must be >= 1, got 0',
      'args.seed must be an integer or null, got string "a"',
      'args.layers.fc must be a boolean, got string "yes"',
      'args.levels is not a known argument (allowed: level, mu, beta, f, hidden, seed, layers); did you mean "level"?',
    ]);
  });

  it('reports missing required keys, an empty list and a non-finite number', () => {
    expect(schemaErrors(schema, { hidden: [], beta: Number.NaN }, 'model.args')).toEqual([
      'model.args.level is required',
      'model.args.hidden must have at least 1 item, got 0',
      'model.args.beta must be a finite number, got number NaN',
    ]);
  });

  it('accepts a valid value and any key when additionalProperties is not false', () => {
    expect(schemaErrors(schema, { level: 'low', hidden: [1, 2], seed: null })).toEqual([]);
    expect(schemaErrors({ type: 'object', properties: {} }, { anything: 1 })).toEqual([]);
  });

  it('offers no did-you-mean when nothing is close', () => {
    expect(schemaErrors({ type: 'object', additionalProperties: false, properties: {} }, { zzz: 1 })).toEqual([
      'args.zzz is not a known argument (allowed: none)',
    ]);
  });
});

describe('parseArgs', () => {
  it('fills in defaults and leaves the input alone', () => {
    const raw = { level: 'high' };
    expect(parseArgs('aggregator "x"', schema, raw)).toEqual({ level: 'high', mu: 0.01 });
    expect(raw).toEqual({ level: 'high' });
  });

  it('prefixes every problem with the label, joined by "; "', () => {
    expect(() => parseArgs('aggregator "x"', schema, { mu: -1 })).toThrow('aggregator "x": args.level is required; args.mu must be >= 0, got -1');
    expect(() => parseArgs('aggregator "x"', schema, [])).toThrow('aggregator "x": args must be an object, got an array []');
    expect(() => parseArgs('model "m"', undefined, null, 'model.args')).toThrow('model "m": model.args must be an object, got null');
    expect(parseArgs('model "m"', undefined, { any: 1 })).toEqual({ any: 1 });
  });
});

describe('describeValue and silentLogger', () => {
  it('shows the type and a shortened value', () => {
    expect(describeValue('x'.repeat(100))).toMatch(/^string "x{76}\.\.\.$/);
    expect(describeValue({ a: 1 })).toBe('an object {"a":1}');
    expect(describeValue(true)).toBe('boolean true');
  });

  it('silentLogger drops everything', () => {
    expect(() => silentLogger.error('nothing', { at: 1 })).not.toThrow();
  });
});
