import { getRegistry, registerAggregator } from './registry.js';
import { createFedBn, createFedProx, FedAvg, fedAvgMSchema, FedAvgM, fedAvgSchema, fedBnSchema, fedProxSchema } from './rules/fedavg.js';
import { FedDyn, fedDynSchema } from './rules/feddyn.js';
import { FedNova, fedNovaSchema } from './rules/fednova.js';
import { FEDDISTILL_KEYS, FedProto, fedProtoSchema } from './rules/fedproto.js';
import { FedOpt, fedOptSchema } from './rules/fedopt.js';
import { CoordinateMedian, Krum, krumSchema, medianSchema, TrimmedMean, trimmedMeanSchema } from './rules/robust.js';
import { Scaffold, scaffoldSchema } from './rules/scaffold.js';

/** Types registered by {@link registerBuiltins}. */
export const BUILTIN_AGGREGATORS = [
  'fedavg',
  'fedavgm',
  'fedprox',
  'scaffold',
  'fednova',
  'fedadam',
  'fedyogi',
  'fedadagrad',
  'fedbn',
  'median',
  'trimmed_mean',
  'krum',
  'feddyn',
  'fedproto',
  'feddistill',
] as const;

/**
 * Registers every built-in rule. Idempotent: a second call (from this or another copy of the
 * package) is a no-op, so plugins that replaced a built-in are not overwritten.
 */
export function registerBuiltins(): void {
  const registry = getRegistry();
  if (registry.builtinsRegistered) return;
  // Arguments reach the factories validated and with schema defaults filled in.
  registerAggregator('fedavg', (a) => new FedAvg(a), fedAvgSchema);
  registerAggregator('fedavgm', (a) => new FedAvgM(a), fedAvgMSchema);
  registerAggregator('fedprox', (a) => createFedProx(a), fedProxSchema);
  registerAggregator('scaffold', (a) => new Scaffold(a), scaffoldSchema);
  registerAggregator('fednova', (a) => new FedNova(a), fedNovaSchema);
  registerAggregator('fedadam', (a) => new FedOpt('fedadam', a), fedOptSchema('fedadam'));
  registerAggregator('fedyogi', (a) => new FedOpt('fedyogi', a), fedOptSchema('fedyogi'));
  registerAggregator('fedadagrad', (a) => new FedOpt('fedadagrad', a), fedOptSchema('fedadagrad'));
  registerAggregator('fedbn', (a) => createFedBn(a), fedBnSchema);
  registerAggregator('median', () => new CoordinateMedian(), medianSchema);
  registerAggregator('trimmed_mean', (a) => new TrimmedMean(a), trimmedMeanSchema);
  registerAggregator('krum', (a) => new Krum(a), krumSchema);
  registerAggregator('feddyn', (a) => new FedDyn(a), fedDynSchema);
  registerAggregator('fedproto', (a) => new FedProto(a), fedProtoSchema);
  registerAggregator('feddistill', (a) => new FedProto(a, 'feddistill', FEDDISTILL_KEYS), fedProtoSchema);
  registry.builtinsRegistered = true;
}
