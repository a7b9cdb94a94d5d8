/**
 * The component registry for what core itself builds by name (trainers, learners, callbacks,
 * learner-side algorithms).
 * Aggregators, models and datasets keep their own registries in their packages; all of them live
 * on globalThis so that two copies of a package still share one registry.
 */
export type ComponentKind = 'trainer' | 'learner' | 'callback' | 'learner_algorithm';

const REGISTRY_KEY = Symbol.for('oiafed.core.registry');

type Registry = Map<ComponentKind, Map<string, unknown>>;

function registry(): Registry {
  const holder = globalThis as unknown as Record<symbol, Registry | undefined>;
  holder[REGISTRY_KEY] ??= new Map();
  return holder[REGISTRY_KEY];
}

export function registerComponent(
  kind: ComponentKind,
  type: string,
  factory: unknown,
  options: { replace?: boolean } = {},
): void {
  const byType = registry().get(kind) ?? new Map<string, unknown>();
  registry().set(kind, byType);
  if (byType.has(type) && !options.replace) {
    throw new Error(`${kind} type "${type}" is already registered`);
  }
  byType.set(type, factory);
}

export function lookupComponent<T>(kind: ComponentKind, type: string): T {
  const byType = registry().get(kind);
  const factory = byType?.get(type);
  if (factory === undefined) {
    const known = [...(byType?.keys() ?? [])].sort().join(', ') || 'none';
    throw new Error(`unknown ${kind} type "${type}" (registered: ${known})`);
  }
  return factory as T;
}

export function listComponents(kind: ComponentKind): string[] {
  return [...(registry().get(kind)?.keys() ?? [])].sort();
}
