import { describe, expect, it } from 'vitest';
import { closestName, createRegistry, unknownNameMessage } from '../src/index.js';

let counter = 0;
/** A registry on a globalThis key of its own, so tests do not see each other's entries. */
function fresh<T>(extra: Partial<Parameters<typeof createRegistry<T>>[0]> = {}) {
  return createRegistry<T>({ kind: 'widget', globalKey: `@oiafed/component/test/${counter++}`, registerName: 'registerWidget', ...extra });
}

describe('createRegistry', () => {
  it('registers, lists sorted, and creates nothing it was not given', () => {
    const r = fresh<() => number>();
    const b = () => 2;
    r.register('beta', b);
    r.register('alpha', () => 1);
    expect(r.list()).toEqual(['alpha', 'beta']);
    expect(r.has('beta')).toBe(true);
    expect(r.get('beta')).toBe(b);
    expect(r.get('gamma')).toBeUndefined();
  });

  it('re-registering the same value is a no-op; a different one throws unless replace is set', () => {
    const r = fresh<() => number>();
    const one = () => 1;
    const two = () => 2;
    r.register('w', one);
    r.register('w', one);
    expect(() => r.register('w', two)).toThrow(
      'registerWidget: widget type "w" is already registered with a different implementation; pass {replace: true} to replace it',
    );
    expect(r.get('w')).toBe(one);
    r.register('w', two, { replace: true });
    expect(r.get('w')).toBe(two);
  });

  it('compares entries with `same` when given (a factory inside an entry object)', () => {
    const r = fresh<{ factory: () => number; note?: string }>({ same: (a, b) => a.factory === b.factory });
    const factory = () => 1;
    r.register('w', { factory, note: 'first' });
    r.register('w', { factory, note: 'second' });
    expect(r.get('w')?.note).toBe('first');
    expect(() => r.register('w', { factory: () => 1 })).toThrow(/already registered/);
  });

  it('refuses names a config could not spell', () => {
    const r = fresh<number>();
    for (const bad of ['', 'bad type!', '-x', '.x', 7 as unknown as string]) {
      expect(() => r.register(bad, 1)).toThrow(/^registerWidget: type .* is invalid; expected letters, digits/);
    }
    r.register('resnet18_v1.2-b', 1);
    r.register('3d_cnn', 1);
  });

  it('names the unknown type, the close one and every registered one', () => {
    const r = fresh<number>();
    r.register('fedavg', 1);
    r.register('krum', 2);
    expect(() => r.require('fedavgg')).toThrow('unknown widget type "fedavgg"; registered types: fedavg, krum; did you mean "fedavg"?');
    expect(() => r.require('imagenet', 'datasets[0].type')).toThrow('datasets[0].type: unknown widget type "imagenet"; registered types: fedavg, krum');
    expect(() => r.require('imagenet')).not.toThrow(/did you mean/);
    expect(fresh<number>({ emptyHint: 'call registerBuiltins()' }).require.bind(null, 'x')).toThrow(
      'unknown widget type "x"; registered types: (none; call registerBuiltins())',
    );
  });

  it('normalizes names on register and lookup', () => {
    const r = fresh<number>({ normalize: (n) => n.trim().toLowerCase().replace(/-/g, '_') });
    r.register('Fashion-MNIST', 1);
    expect(r.list()).toEqual(['fashion_mnist']);
    expect(r.require(' fashion_mnist ')).toBe(1);
  });

  it('runs a once-flag initializer once, and again after it threw', () => {
    const r = fresh<number>();
    let runs = 0;
    r.once('builtins', () => runs++);
    r.once('builtins', () => runs++);
    expect(runs).toBe(1);
    expect(() => r.once('boom', () => { throw new Error('no'); })).toThrow('no');
    r.once('boom', () => runs++);
    expect(runs).toBe(2);
    expect(r.flags.has('boom')).toBe(true);
  });

  it('shares entries and flags with a second copy of the module through globalThis', async () => {
    const key = `@oiafed/component/test/shared-${counter++}`;
    const r = createRegistry<number>({ kind: 'widget', globalKey: key });
    // the query string makes vite load a second, independent instance of the module
    // @ts-expect-error -- TypeScript cannot resolve a specifier with a query string
    const copy = (await import('../src/registry.js?second-copy')) as typeof import('../src/registry.js');
    expect(copy.createRegistry).not.toBe(createRegistry);
    const other = copy.createRegistry<number>({ kind: 'widget', globalKey: key });
    other.register('from_copy', 5);
    other.once('builtins', () => {});
    expect(r.require('from_copy')).toBe(5);
    expect(r.flags.has('builtins')).toBe(true);
    expect((globalThis as Record<symbol, unknown>)[Symbol.for(key)]).toBeDefined();
  });
});

describe('names', () => {
  it('suggests a name within one edit per three characters, case-insensitively', () => {
    expect(closestName('FedAvgg', ['fedavg', 'fedprox'])).toBe('fedavg');
    expect(closestName('imagenet', ['cifar10', 'mnist'])).toBeUndefined();
    expect(unknownNameMessage('model', 'lenet5', ['lenet', 'mlp'])).toBe(
      'unknown model type "lenet5"; registered types: lenet, mlp; did you mean "lenet"?',
    );
  });
});
