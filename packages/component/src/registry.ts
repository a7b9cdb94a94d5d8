/**
 * One registry helper for every component kind a config names by `type` (aggregators, models,
 * datasets, callbacks, learner algorithms): the same name rule, the same re-registration rule
 * and the same message for an unknown name everywhere.
 */
import { didYouMean } from './names.js';

/** Names a config may use as a `type`: letters, digits, `_`, `-` and `.`, not starting with `-` or `.`. */
export const COMPONENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Options of {@link Registry.register}. */
export interface RegisterOptions {
  /** Replace a different value already registered under the name instead of throwing. */
  replace?: boolean;
}

/** How one kind of component is registered and named in messages. */
export interface RegistryOptions<T> {
  /** Singular noun used in messages, e.g. `aggregator` or `learner_algorithm`. */
  kind: string;
  /**
   * `Symbol.for(globalKey)` holds the entries on globalThis, so two copies of a package (one
   * hoisted, one nested under a plugin) share one registry.
   */
  globalKey: string;
  /** Prefix of registration errors, e.g. `registerAggregator`; default `register <kind>`. */
  registerName?: string;
  /** The stored spelling of a name (e.g. lower case, aliases); applied on register and lookup. */
  normalize?: (name: string) => string;
  /** Whether two values are the same registration; default `===`. */
  same?: (a: T, b: T) => boolean;
  /** Shown instead of the list when nothing is registered, e.g. `call registerBuiltins()`. */
  emptyHint?: string;
}

/** A process-wide map from component name to value, shared through globalThis. */
export interface Registry<T> {
  readonly kind: string;
  /**
   * Registers `value` under `name`. Registering the same value again is a no-op (a plugin
   * imported twice); a different value under a taken name throws unless `replace` is set.
   */
  register(name: string, value: T, options?: RegisterOptions): void;
  /** The value registered under `name`, if any. */
  get(name: string): T | undefined;
  /** The value registered under `name`; throws {@link unknownNameError} otherwise. */
  require(name: string, where?: string): T;
  has(name: string): boolean;
  /** Registered names, sorted. */
  list(): string[];
  /** Runs `init` the first time `flag` is seen by any copy of the package (built-ins), else nothing. */
  once(flag: string, init: () => void): void;
  /** Flags set by {@link once} (shared like the entries). */
  readonly flags: Set<string>;
}

interface Shared<T> {
  entries: Map<string, T>;
  flags: Set<string>;
}

function shared<T>(globalKey: string): Shared<T> {
  const holder = globalThis as unknown as Record<symbol, Shared<T> | undefined>;
  const key = Symbol.for(globalKey);
  holder[key] ??= { entries: new Map(), flags: new Set() };
  return holder[key];
}

/**
 * The message for a name nobody registered: the kind, the name, a did-you-mean when one is
 * close, and every registered name (or `hint` when there are none).
 */
export function unknownNameMessage(kind: string, name: string, known: readonly string[], hint?: string): string {
  const list = known.length > 0 ? known.join(', ') : `(none${hint ? `; ${hint}` : ''})`;
  return `unknown ${kind} type ${JSON.stringify(name)}; registered types: ${list}${didYouMean(name, known)}`;
}

/** Creates (or joins, through globalThis) the registry of one component kind. */
export function createRegistry<T>(options: RegistryOptions<T>): Registry<T> {
  const { kind } = options;
  const normalize = options.normalize ?? ((name: string) => name);
  const same = options.same ?? ((a: T, b: T) => a === b);
  const registerName = options.registerName ?? `register ${kind}`;
  const state = () => shared<T>(options.globalKey);
  const list = () => [...state().entries.keys()].sort();
  return {
    kind,
    get flags() {
      return state().flags;
    },
    register(name, value, { replace = false } = {}) {
      const key = typeof name === 'string' ? normalize(name) : name;
      if (typeof key !== 'string' || !COMPONENT_NAME.test(key)) {
        throw new Error(
          `${registerName}: type ${JSON.stringify(name)} is invalid; expected letters, digits, '_', '-' or '.', not starting with '-' or '.'`,
        );
      }
      const existing = state().entries.get(key);
      if (existing !== undefined && !replace) {
        if (same(existing, value)) return;
        throw new Error(
          `${registerName}: ${kind} type "${key}" is already registered with a different implementation; pass {replace: true} to replace it`,
        );
      }
      state().entries.set(key, value);
    },
    get: (name) => state().entries.get(normalize(name)),
    has: (name) => state().entries.has(normalize(name)),
    list,
    require(name, where) {
      const value = typeof name === 'string' ? state().entries.get(normalize(name)) : undefined;
      if (value !== undefined) return value;
      const message = unknownNameMessage(kind, String(name), list(), options.emptyHint);
      throw new Error(where ? `${where}: ${message}` : message);
    },
    once(flag, init) {
      const { flags } = state();
      if (flags.has(flag)) return;
      flags.add(flag);
      try {
        init();
      } catch (error) {
        flags.delete(flag);
        throw error;
      }
    },
  };
}
