import { createAggregator, registerBuiltins } from './index.js';
import { describeAggregatorContract } from './testing/index.js';

registerBuiltins();

const cases: { type: string; args?: Record<string, unknown>; adaptive?: boolean }[] = [
  { type: 'fedavg' },
  { type: 'fedavg', args: { weighted: false } },
  { type: 'fedavgm' },
  { type: 'fedprox', args: { mu: 0.1 } },
  { type: 'scaffold' },
  { type: 'fednova' },
  { type: 'fedadam', adaptive: true },
  { type: 'fedyogi', adaptive: true },
  { type: 'fedadagrad', adaptive: true },
  { type: 'fedbn' },
  { type: 'median' },
  { type: 'trimmed_mean', args: { beta: 0.2 } },
  { type: 'krum' },
  { type: 'krum', args: { f: 1, m: 3 } },
];

for (const c of cases) {
  describeAggregatorContract(
    `${c.type}${c.args ? ` ${JSON.stringify(c.args)}` : ''}`,
    () => createAggregator({ type: c.type, args: c.args }),
    { identicalUpdatesFixedPoint: !c.adaptive },
  );
}
