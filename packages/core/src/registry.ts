/**
 * The component registry for what core itself builds by name (trainers, learners, callbacks,
 * learner-side algorithms): one @oiafed/component registry per kind, on globalThis like the
 * aggregators', models' and datasets' registries, so two copies of a package still share them
 * and every kind follows the same re-registration rule and unknown-name message.
 */
import { createRegistry, type Registry } from '@oiafed/component';

export type ComponentKind = 'trainer' | 'learner' | 'callback' | 'learner_algorithm';

/** The public function that registers each kind, named in registration errors. */
const REGISTER_NAMES: Record<ComponentKind, string> = {
  trainer: 'registerComponent',
  learner: 'registerComponent',
  callback: 'registerCallback',
  learner_algorithm: 'registerLearnerAlgorithm',
};

const registries = new Map<ComponentKind, Registry<unknown>>();

/** An entry that wraps a factory (`{factory, argsSchema}`) is the same registration when its factory is. */
function sameRegistration(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const factoryOf = (v: unknown) => (v !== null && typeof v === 'object' ? (v as { factory?: unknown }).factory : undefined);
  return typeof factoryOf(a) === 'function' && factoryOf(a) === factoryOf(b);
}

function registryOf(kind: ComponentKind): Registry<unknown> {
  let registry = registries.get(kind);
  if (!registry) {
    registry = createRegistry<unknown>({
      kind,
      globalKey: `oiafed.core.registry/${kind}`,
      registerName: REGISTER_NAMES[kind],
      same: sameRegistration,
    });
    registries.set(kind, registry);
  }
  return registry;
}

/**
 * Registers `factory` under `type`. The same value again is a no-op; a different one under a
 * taken type throws unless `replace` is set.
 */
export function registerComponent(
  kind: ComponentKind,
  type: string,
  factory: unknown,
  options: { replace?: boolean } = {},
): void {
  registryOf(kind).register(type, factory, options);
}

/** The value registered under `type`; throws naming the registered types (and a close one) otherwise. */
export function lookupComponent<T>(kind: ComponentKind, type: string): T {
  return registryOf(kind).require(type) as T;
}

/** The value registered under `type`, if any. */
export function findComponent<T>(kind: ComponentKind, type: string): T | undefined {
  return registryOf(kind).get(type) as T | undefined;
}

export function listComponents(kind: ComponentKind): string[] {
  return registryOf(kind).list();
}
