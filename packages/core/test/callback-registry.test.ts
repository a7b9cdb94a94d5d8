import { describe, expect, it } from 'vitest';
import { componentProblems } from '../src/component-check.js';
import { createCallback, registerBuiltinCallbacks, registerCallback, type CallbackFactory } from '../src/index.js';

const context = { runDir: '/nonexistent-run-dir' };

describe('callback registry', () => {
  it('checks built-in callback args against their schema, naming the key path', () => {
    registerBuiltinCallbacks();
    expect(() => createCallback({ type: 'early_stopping', args: { patience: 0 } }, context)).toThrow(
      'callback "early_stopping": args.patience must be >= 1, got 0',
    );
    expect(() => createCallback({ type: 'early_stopping', args: { patiance: 3 } }, context)).toThrow(
      'callback "early_stopping": args.patiance is not a known argument (allowed: patience, metric, mode, min_delta); did you mean "patience"?',
    );
    expect(() => createCallback({ type: 'model_checkpoint', args: { mode: 'best' } }, context)).toThrow(
      'callback "model_checkpoint": args.mode must be one of "max", "min", got string "best"',
    );
    expect(createCallback({ type: 'early_stopping', args: { patience: 2, mode: 'min' } }, context).onRoundEnd).toBeTypeOf('function');
  });

  it('oiafed validate (componentProblems) reports each bad callback entry by its index', () => {
    type Config = Parameters<typeof componentProblems>[0];
    const base = { aggregator: { type: 'fedavg', args: {} }, learner: { type: 'default', args: {} } };
    const bad = { ...base, callbacks: [{ type: 'model_checkpoint', args: {} }, { type: 'early_stopping', args: { patience: 0 } }, { type: 'early_stoping', args: {} }] };
    expect(componentProblems(bad as unknown as Config)).toEqual([
      { path: 'callbacks[1]', message: 'callback "early_stopping": args.patience must be >= 1, got 0' },
      { path: 'callbacks[2]', message: expect.stringMatching(/^unknown callback type "early_stoping"; .*did you mean "early_stopping"\?$/) },
    ]);
    const good = { ...base, callbacks: [{ type: 'early_stopping', args: { patience: 3, metric: 'loss', mode: 'min' } }] };
    expect(componentProblems(good as unknown as Config)).toEqual([]);
  });

  it('names an unknown type with the registered ones and a close one', () => {
    registerBuiltinCallbacks();
    expect(() => createCallback({ type: 'early_stoping' }, context)).toThrow(
      /^unknown callback type "early_stoping"; registered types: .*early_stopping.*; did you mean "early_stopping"\?$/,
    );
  });

  it('follows the one re-registration rule and passes validated args to a third-party factory', () => {
    let seen: unknown;
    const factory: CallbackFactory = (args) => {
      seen = args;
      return {};
    };
    const argsSchema = { type: 'object', properties: { every: { type: 'integer', minimum: 1, default: 2 } } } as const;
    registerCallback('test_every', factory, { argsSchema });
    registerCallback('test_every', factory, { argsSchema });
    expect(() => registerCallback('test_every', () => ({}))).toThrow(
      'registerCallback: callback type "test_every" is already registered with a different implementation; pass {replace: true} to replace it',
    );
    createCallback({ type: 'test_every' }, context);
    expect(seen).toEqual({ every: 2 });
    expect(() => createCallback({ type: 'test_every', args: { every: 0.5 } }, context)).toThrow(
      'callback "test_every": args.every must be an integer, got number 0.5',
    );
    registerCallback('test_every', () => ({ onTrainEnd: () => {} }), { replace: true });
    expect(createCallback({ type: 'test_every' }, context).onTrainEnd).toBeTypeOf('function');
  });
});
