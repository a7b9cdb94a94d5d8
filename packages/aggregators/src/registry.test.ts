import { describe, expect, it } from 'vitest';
import {
  BUILTIN_AGGREGATORS,
  createAggregator,
  FedAvgM,
  hasAggregator,
  listAggregators,
  registerAggregator,
  registerBuiltins,
} from './index.js';
import type { Aggregator } from './index.js';

const stub = (type: string): Aggregator => ({
  type,
  configureRound: () => ({ instructions: {} }),
  aggregate: (ctx) => ({ weights: new Float32Array(ctx.global) }),
  getState: () => ({}),
  setState: () => {},
});

describe('aggregator registry', () => {
  it('registers every built-in, and calling registerBuiltins twice is fine', () => {
    registerBuiltins();
    registerBuiltins();
    for (const type of BUILTIN_AGGREGATORS) expect(hasAggregator(type)).toBe(true);
    expect(listAggregators()).toEqual([...listAggregators()].sort());
  });

  it('lists the registered types when asked for an unknown one', () => {
    registerBuiltins();
    expect(() => createAggregator({ type: 'fedsgd_typo' })).toThrow(/unknown aggregator type "fedsgd_typo"; registered types: .*fedavg.*krum/);
  });

  it('suggests the close type, and re-registers only the same factory unless replace is set', () => {
    registerBuiltins();
    expect(() => createAggregator({ type: 'fedavgg' })).toThrow(/unknown aggregator type "fedavgg"; registered types: .*; did you mean "fedavg"\?$/);
    const factory = () => stub('test_rereg');
    registerAggregator('test_rereg', factory);
    registerAggregator('test_rereg', factory);
    expect(() => registerAggregator('test_rereg', () => stub('other'))).toThrow(
      'registerAggregator: aggregator type "test_rereg" is already registered with a different implementation; pass {replace: true} to replace it',
    );
    registerAggregator('test_rereg', () => stub('replaced'), undefined, { replace: true });
    expect(createAggregator({ type: 'test_rereg' }).type).toBe('replaced');
  });

  it('prefixes args errors with the type and names the arg and expectation', () => {
    registerBuiltins();
    expect(() => createAggregator({ type: 'fedprox', args: { mu: -1 } })).toThrow('aggregator "fedprox": args.mu must be >= 0, got -1');
    expect(() => createAggregator({ type: 'fedavg', args: { weighted: 'yes' } })).toThrow(
      'aggregator "fedavg": args.weighted must be a boolean, got string "yes"',
    );
    expect(() => createAggregator({ type: 'krum', args: { f: 1.5 } })).toThrow('aggregator "krum": args.f must be an integer, got number 1.5');
    expect(() => createAggregator({ type: 'fedavgm', args: { momentm: 0.9 } })).toThrow(
      /aggregator "fedavgm": args.momentm is not a known argument \(allowed: server_lr, momentum, weighted\)/,
    );
    expect(() => createAggregator({ type: 'trimmed_mean', args: { beta: 0.5 } })).toThrow('args.beta must be < 0.5, got 0.5');
    expect(() => createAggregator({ type: 'fedavg', args: [] as unknown as Record<string, unknown> })).toThrow(
      'aggregator "fedavg": args must be an object, got an array',
    );
  });

  it('fills in schema defaults before the factory runs', () => {
    registerBuiltins();
    const agg = createAggregator({ type: 'fedavgm', args: { server_lr: 0.5 } }) as FedAvgM;
    expect(agg.momentum).toBe(0.9);
    expect(agg.serverLr).toBe(0.5);
  });

  it('accepts third-party rules and validates their schema', () => {
    registerAggregator('test_plugin_rule', (args) => stub(`test_plugin_rule:${String(args.level)}`), {
      type: 'object',
      additionalProperties: false,
      required: ['level'],
      properties: { level: { type: 'string', enum: ['low', 'high'] } },
    });
    expect(createAggregator({ type: 'test_plugin_rule', args: { level: 'high' } }).type).toBe('test_plugin_rule:high');
    expect(() => createAggregator({ type: 'test_plugin_rule' })).toThrow('aggregator "test_plugin_rule": args.level is required');
    expect(() => createAggregator({ type: 'test_plugin_rule', args: { level: 'mid' } })).toThrow(
      'args.level must be one of "low", "high", got string "mid"',
    );
    expect(() => registerAggregator('bad type!', () => stub('x'))).toThrow(/registerAggregator: type "bad type!" is invalid/);
  });

  it('shares one registry between two copies of the module through globalThis', async () => {
    registerBuiltins();
    // the query string makes vite load a second, independent instance of the module
    // @ts-expect-error -- TypeScript cannot resolve a specifier with a query string
    const copy = (await import('./registry.js?second-copy')) as typeof import('./registry.js');
    expect(copy.registerAggregator).not.toBe(registerAggregator);
    expect(copy.hasAggregator('fedavg')).toBe(true);
    copy.registerAggregator('registered_by_copy', () => stub('registered_by_copy'));
    expect(hasAggregator('registered_by_copy')).toBe(true);
    expect(createAggregator({ type: 'registered_by_copy' }).type).toBe('registered_by_copy');
    expect((globalThis as Record<symbol, unknown>)[Symbol.for('@oiafed/aggregators/registry')]).toBeDefined();
  });
});
