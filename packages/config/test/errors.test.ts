import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveConfig } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

/** Writes `body` as trainer.yaml in a temp dir and loads it, expecting a ConfigError. */
function loadError(body: string): { error: ConfigError; file: string } {
  const dir = writeTree({ 'trainer.yaml': body });
  const file = join(dir, 'trainer.yaml');
  return { error: configError(() => loadConfig(file, { env: {} })), file };
}

const TRAINER = 'node_id: trainer\nrole: trainer\n';

describe('schema errors name file, key path and expectation', () => {
  it('wrong type', () => {
    const { error, file } = loadError(`${TRAINER}trainer:\n  args:\n    max_rounds: ten\n`);
    expect(error.message).toBe(`${file}: trainer.args.max_rounds: must be integer (got "ten")`);
    expect(error.issues).toEqual([{ file, path: 'trainer.args.max_rounds', message: 'must be integer (got "ten")', line: 5, col: 5 }]);
  });

  it('unknown top-level key, with the allowed keys', () => {
    const { error, file } = loadError(`${TRAINER}foo: 1\n`);
    expect(error.message).toBe(
      `${file}: (root): unknown key "foo" (allowed: extend, node_id, role, exp_name, seed, listen, connect_to, transport, trainer, learner, aggregator, differential_privacy, secure_aggregation, model, datasets, retry, heartbeat, tracker, metrics, health, dashboard, callbacks, plugins, config_dir, checkpoint)`,
    );
  });

  it('unknown nested key, suggesting the closest allowed one', () => {
    const { error, file } = loadError(`${TRAINER}trainer: {args: {max_round: 3}}\n`);
    expect(error.message).toBe(
      `${file}: trainer.args: unknown key "max_round" (allowed: max_rounds, local_epochs, client_fraction, min_clients, eval_every, checkpoint_every, round_timeout, registration_timeout, min_available_clients, update_norm_clip); did you mean "max_rounds"?`,
    );
    expect(error.issues[0]).toMatchObject({ line: 3, col: 18 });
  });

  it('bad enum value lists the allowed values', () => {
    const { error, file } = loadError(`${TRAINER}retry: {backoff_strategy: fast}\n`);
    expect(error.message).toBe(`${file}: retry.backoff_strategy: must be one of: constant, linear, exponential (got "fast")`);
  });

  it('out-of-range number and pattern mismatch', () => {
    const { error, file } = loadError(
      `${TRAINER}listen: {port: 70000}\nlearner: {args: {device: gpu}}\ntracker: {backends: [{type: file, rotation: huge}]}\n`,
    );
    expect(error.message.split('\n')).toEqual([
      `${file}: listen.port: must be <= 65535 (got 70000)`,
      `${file}: learner.args.device: must be auto, cpu, cuda or cuda:N (got "gpu")`,
      `${file}: tracker.backends[0].rotation: must be a size such as "100 MB" or "10 KB" (got "huge")`,
    ]);
  });

  it('learner.args.blas accepts auto, on, off and names the key path otherwise', () => {
    const { error, file } = loadError(`${TRAINER}learner: {args: {blas: fast}}\n`);
    expect(error.message).toBe(`${file}: learner.args.blas: must be one of: auto, on, off (got "fast")`);
    expect(loadConfig(join(writeTree({ 'trainer.yaml': `${TRAINER}learner: {args: {blas: off}}\n` }), 'trainer.yaml'), { env: {} }).learner.args.blas).toBe('off');
  });

  it('missing required keys', () => {
    const error = configError(() => resolveConfig({ model: {} }, { env: {} }));
    expect(error.message.split('\n').sort()).toEqual([
      '<inline>: model.type: required key is missing',
      '<inline>: node_id: required key is missing',
      '<inline>: role: required key is missing',
    ]);
  });

  it('reports every error at once (allErrors)', () => {
    const { error, file } = loadError(`${TRAINER}seed: 1.5\ntrainer: {args: {client_fraction: 0}}\nmetrics: {enabled: yes}\n`);
    expect(error.issues.map((i) => i.path)).toEqual(['seed', 'trainer.args.client_fraction', 'metrics.enabled']);
    expect(error.message.split('\n')).toEqual([
      `${file}: seed: must be integer (got 1.5)`,
      `${file}: trainer.args.client_fraction: must be > 0 (got 0)`,
      `${file}: metrics.enabled: must be boolean (got "yes")`,
    ]);
  });

  it('rejects a malformed connect_to entry, showing the expected form', () => {
    const { error, file } = loadError('node_id: l\nrole: learner\nconnect_to: [trainer@host]\n');
    expect(error.message).toBe(
      `${file}: connect_to[0]: expected id@host:port, e.g. trainer@127.0.0.1:50051 or trainer@[::1]:50051; the port is missing (got "trainer@host")`,
    );
  });

  it('requires a peer for a gRPC learner', () => {
    const { error, file } = loadError('node_id: l\nrole: learner\ntransport: {mode: grpc}\n');
    expect(error.message).toBe(
      `${file}: connect_to: a learner with transport.mode grpc needs at least one peer to dial (id@host:port, e.g. trainer@127.0.0.1:50051)`,
    );
  });

  it('checks fields against each other', () => {
    const error = configError(() =>
      resolveConfig(
        {
          node_id: 't',
          role: 'trainer',
          heartbeat: { interval: 10, timeout: 5 },
          retry: { initial_delay: 5, max_delay: 1 },
          transport: { grpc: { tls: { cert: 'c.pem' } } },
          datasets: [{ type: 'mnist', partition: { num_partitions: 2, partition_id: 2 } }],
        },
        { env: {} },
      ),
    );
    expect(error.message.split('\n')).toEqual([
      '<inline>: heartbeat.timeout: must be greater than heartbeat.interval (10) (got 5)',
      '<inline>: retry.max_delay: must be >= retry.initial_delay (5) (got 1)',
      '<inline>: transport.grpc.tls: cert and key must be given together',
      '<inline>: datasets[0].partition.partition_id: must be less than num_partitions (2) (got 2)',
    ]);
  });

  it('uses the given file name for in-code configs', () => {
    const error = configError(() => resolveConfig({ node_id: 't', role: 'trainer', seed: 'x' }, { file: 'generated.yaml', env: {} }));
    expect(error.message).toBe('generated.yaml: seed: must be integer (got "x")');
  });

  it('rejects a non-mapping and non-plain data', () => {
    expect(configError(() => resolveConfig([1], { env: {} })).message).toBe(
      '<inline>: (root): a config must be a mapping of keys to values (got [1])',
    );
    expect(configError(() => resolveConfig({ node_id: 't', role: 'trainer', seed: () => 1 }, { env: {} })).message).toMatch(
      /^<inline>: seed: must be plain data/,
    );
  });
});

describe('YAML and file errors', () => {
  it('reports a syntax error as file:line:col', () => {
    const { error, file } = loadError('node_id: trainer\nrole: trainer\ntrainer: {args: [1, 2}\n');
    expect(error.issues[0]).toMatchObject({ file, path: '', line: 3 });
    expect(error.message.split('\n')[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: \\S`));
    expect(error.message).not.toContain('\n\n');
  });

  it('reports a duplicate key', () => {
    const { error, file } = loadError('node_id: a\nnode_id: b\nrole: trainer\n');
    expect(error.message).toBe(`${file}:2:1: Map keys must be unique`);
  });

  it('reports a missing file', () => {
    expect(configError(() => loadConfig('/nonexistent/trainer.yaml')).message).toBe(
      '/nonexistent/trainer.yaml: cannot read config: file not found',
    );
  });

  it('reports a file that is not a mapping', () => {
    const { error, file } = loadError('- a\n- b\n');
    expect(error.message).toBe(`${file}: (root): a config must be a mapping of keys to values (got ["a","b"])`);
  });
});
