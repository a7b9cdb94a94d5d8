import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseOverride, resolveConfig, stringifyConfig } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
const trainerYaml = join(fixtures, 'trainer.yaml');
const learnerYaml = join(fixtures, 'learner_0.yaml');

describe('parseOverride', () => {
  it('parses the value as a YAML scalar or flow collection', () => {
    expect(parseOverride('trainer.args.max_rounds=3').value).toBe(3);
    expect(parseOverride('heartbeat.enabled=false').value).toBe(false);
    expect(parseOverride('connect_to=[trainer@127.0.0.1:1, b@127.0.0.1:2]').value).toEqual(['trainer@127.0.0.1:1', 'b@127.0.0.1:2']);
    expect(parseOverride('aggregator.args={mu: 0.1}').value).toEqual({ mu: 0.1 });
    expect(parseOverride('a.b=').value).toBeNull();
  });

  it('splits dotted and bracketed key paths, digits indexing lists', () => {
    expect(parseOverride('datasets.0.partition.partition_id=2').keys).toEqual(['datasets', 0, 'partition', 'partition_id']);
    expect(parseOverride('datasets[1].type=mnist').keys).toEqual(['datasets', 1, 'type']);
  });

  it('keeps a scalar as typed where the schema declares a string', () => {
    expect(parseOverride('exp_name=2024').value).toBe('2024');
    expect(parseOverride('seed=7').value).toBe(7);
  });

  it('rejects text without "=" or with bad YAML, naming --set', () => {
    expect(configError(() => parseOverride('trainer.args.max_rounds')).message).toMatch(/^--set: "trainer\.args\.max_rounds": expected key\.path=value/);
    expect(configError(() => parseOverride('=3')).message).toMatch(/expected key\.path=value/);
    expect(configError(() => parseOverride('a..b=3')).message).toMatch(/is not a key path/);
    expect(configError(() => parseOverride('model.args={a: [1}')).message).toMatch(/^--set: .*not valid YAML/);
  });
});

describe('loadConfig with overrides', () => {
  it('sets scalars, list entries and whole maps; a later override wins', () => {
    const config = loadConfig(learnerYaml, {
      env: {},
      overrides: [
        'learner.args.batch_size=16',
        'transport.mode=memory',
        'datasets.0.partition.partition_id=2',
        'datasets[0].partition.num_partitions=4',
        'learner.args.lr=0.5',
        'learner.args.lr=0.25',
      ],
    });
    expect(config.learner.args.batch_size).toBe(16);
    expect(config.learner.args.lr).toBe(0.25);
    expect(config.transport.mode).toBe('memory');
    expect(config.datasets[0]!.partition).toMatchObject({ partition_id: 2, num_partitions: 4 });
  });

  it('applies after extend and interpolation, and the resolved config records the value', () => {
    const dir = writeTree({
      'base.yaml': 'role: trainer\nmodel: {type: mlp}\ntrainer:\n  args:\n    max_rounds: ${ROUNDS:50}\n',
      'child.yaml': 'extend: base.yaml\nnode_id: trainer\n',
    });
    const config = loadConfig(join(dir, 'child.yaml'), { env: {}, overrides: ['trainer.args.max_rounds=3', 'exp_name=smoke'] });
    expect(config.trainer.args.max_rounds).toBe(3);
    const text = stringifyConfig(config);
    expect(text).toMatch(/max_rounds: 3/);
    expect(text).toMatch(/exp_name: smoke/);
  });

  it('creates missing maps on the way', () => {
    const config = loadConfig(trainerYaml, { env: {}, overrides: ['aggregator.args.weighted=false'] });
    expect(config.aggregator?.args).toEqual({ weighted: false });
  });

  it('validates overridden values like the YAML, naming --set and the key path', () => {
    const error = configError(() =>
      loadConfig(trainerYaml, { env: {}, overrides: ['trainer.args.max_rounds=many', 'transport.mode=pigeon', 'trainer.args.max_round=3'] }),
    );
    const lines = error.message.split('\n');
    expect(lines).toContain('--set: trainer.args.max_rounds: must be integer (got "many")');
    expect(lines.some((l) => l.startsWith('--set: transport.mode: must be one of: auto, memory, grpc'))).toBe(true);
    expect(lines.some((l) => l.startsWith('--set: trainer.args: unknown key "max_round"') && l.includes('did you mean "max_rounds"'))).toBe(true);
    // Problems that are not about an override still name the file.
    const dir = writeTree({ 'bad.yaml': 'node_id: t\nrole: trainer\nmodel: {type: mlp}\nseed: x\n' });
    const other = configError(() => loadConfig(join(dir, 'bad.yaml'), { env: {}, overrides: ['exp_name=ok'] }));
    expect(other.message).toMatch(/bad\.yaml:4:1: seed: must be integer|bad\.yaml: seed: must be integer/);
  });

  it('refuses a path through a scalar or past the end of a list', () => {
    expect(configError(() => loadConfig(trainerYaml, { env: {}, overrides: ['node_id.x=1'] })).message).toMatch(
      /^--set: "node_id\.x=1": node_id is "trainer", not a map or list/,
    );
    expect(configError(() => loadConfig(learnerYaml, { env: {}, overrides: ['datasets.5.type=mnist'] })).message).toMatch(
      /datasets has 1 entries; an index may be at most 1/,
    );
    expect(configError(() => loadConfig(learnerYaml, { env: {}, overrides: ['datasets.type=mnist'] })).message).toMatch(
      /datasets is a list; index it with a number/,
    );
  });

  it('works on configs built in code too', () => {
    const config = resolveConfig({ node_id: 't', role: 'trainer', model: { type: 'mlp' } }, { env: {}, overrides: ['seed=9'] });
    expect(config.seed).toBe(9);
  });
});
