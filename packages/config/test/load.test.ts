import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig } from '@oiafed/config';
import { configError, writeTree } from './helpers.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

describe('deployment guide configs', () => {
  it('loads trainer.yaml unchanged, with defaults filled in', () => {
    const config = loadConfig(join(fixtures, 'trainer.yaml'), { env: {} });
    expect(config.node_id).toBe('trainer');
    expect(config.role).toBe('trainer');
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 50051 });
    expect(config.transport.mode).toBe('grpc');
    expect(config.trainer).toEqual({
      type: 'default',
      args: {
        max_rounds: 100,
        local_epochs: 1,
        client_fraction: 1,
        min_clients: 1,
        eval_every: 1,
        checkpoint_every: 0,
        round_timeout: 600,
        registration_timeout: 300,
      },
    });
    expect(config.aggregator).toEqual({ type: 'fedavg', args: {} });
    expect(config.model).toEqual({ type: 'cifar10_cnn', args: {} });
  });

  it('loads learner_0.yaml unchanged without dialing anything', () => {
    const config = loadConfig(join(fixtures, 'learner_0.yaml'), { env: {} });
    expect(config.connect_to).toEqual(['trainer@192.168.1.1:50051']);
    expect(config.listen.port).toBe(50052);
    expect(config.learner.args).toEqual({
      batch_size: 64,
      lr: 0.01,
      optimizer: 'sgd',
      momentum: 0,
      weight_decay: 0,
      device: 'cuda:0',
    });
    expect(config.datasets).toEqual([
      { type: 'cifar10', split: 'train', args: {}, partition: { strategy: 'iid', partition_id: 0 } },
    ]);
  });
});

describe('defaults', () => {
  it('fills every section of a two-key config', () => {
    const config = resolveConfig({ node_id: 'n1', role: 'learner' }, { env: {} });
    expect(config).toEqual({
      node_id: 'n1',
      role: 'learner',
      exp_name: 'oiafed',
      seed: 42,
      listen: { host: '0.0.0.0', port: 0 },
      connect_to: [],
      transport: {
        mode: 'auto',
        grpc: { timeout: 60, keepalive: { time: 30, timeout: 10 }, max_message_mb: 256, chunk_mb: 4, max_json_body_kb: 1024, compression: 'none' },
        update_compression: { type: 'none', topk_ratio: 0.01 },
      },
      trainer: {
        type: 'default',
        args: {
          max_rounds: 10,
          local_epochs: 1,
          client_fraction: 1,
          min_clients: 1,
          eval_every: 1,
          checkpoint_every: 0,
          round_timeout: 600,
          registration_timeout: 300,
        },
      },
      learner: {
        type: 'default',
        args: { batch_size: 32, lr: 0.01, optimizer: 'sgd', momentum: 0, weight_decay: 0, device: 'auto' },
      },
      aggregator: { type: 'fedavg', args: {} },
      datasets: [],
      retry: { max_attempts: 10, backoff_strategy: 'exponential', initial_delay: 1, max_delay: 30, multiplier: 2 },
      heartbeat: { enabled: true, interval: 5, timeout: 15 },
      tracker: { backends: [{ type: 'console', level: 'info', log_dir: './logs', rotation: '100 MB', retention: 5 }] },
      metrics: { enabled: false, host: '0.0.0.0', port: 9090 },
      health: { enabled: false, host: '0.0.0.0', port: 8080 },
      callbacks: [],
      plugins: [],
      checkpoint: { dir: './checkpoints', resume: false, keep: 3 },
    });
  });

  it('defaults the listen port by role: 50051 for a trainer', () => {
    expect(resolveConfig({ node_id: 't', role: 'trainer', listen: { host: '127.0.0.1' } }, { env: {} }).listen).toEqual({
      host: '127.0.0.1',
      port: 50051,
    });
  });

  it('fills defaults inside list items', () => {
    const config = resolveConfig(
      { node_id: 't', role: 'trainer', tracker: { backends: [{ type: 'loguru', rotation: '10 KB' }] } },
      { env: {} },
    );
    expect(config.tracker.backends).toEqual([{ type: 'loguru', level: 'info', log_dir: './logs', rotation: '10 KB', retention: 5 }]);
  });

  it('does not modify the object handed to resolveConfig', () => {
    const raw = { node_id: 't', role: 'trainer', trainer: { args: { max_rounds: 3 } } };
    resolveConfig(raw, { env: {} });
    expect(raw).toEqual({ node_id: 't', role: 'trainer', trainer: { args: { max_rounds: 3 } } });
  });
});

describe('extend', () => {
  const chain = {
    'base/root.yaml': [
      'exp_name: root_exp',
      'seed: 1',
      'trainer: {args: {max_rounds: 5, local_epochs: 2}}',
      'plugins: [a, b, c]',
      'aggregator: {type: fedprox, args: {mu: 0.1}}',
    ].join('\n'),
    'base/mid.yaml': [
      'extend: root.yaml',
      'role: trainer',
      'seed: 2',
      'trainer: {args: {max_rounds: 50}}',
      'aggregator: {args: {weighted: true}}',
    ].join('\n'),
    'nodes/trainer.yaml': ['extend: ../base/mid.yaml', 'node_id: t1', 'seed: 3', 'plugins: [z]'].join('\n'),
  };

  it('merges a chain of three files: maps merge, lists replace, scalars override', () => {
    const dir = writeTree(chain);
    const config = loadConfig(join(dir, 'nodes/trainer.yaml'), { env: {} });
    expect(config.node_id).toBe('t1');
    expect(config.role).toBe('trainer');
    expect(config.exp_name).toBe('root_exp');
    expect(config.seed).toBe(3);
    expect(config.plugins).toEqual(['z']);
    expect(config.trainer.args.max_rounds).toBe(50);
    expect(config.trainer.args.local_epochs).toBe(2);
    expect(config.aggregator).toEqual({ type: 'fedprox', args: { mu: 0.1, weighted: true } });
    expect(config).not.toHaveProperty('extend');
  });

  it('names the parent file an invalid inherited key came from', () => {
    const dir = writeTree({ ...chain, 'base/root.yaml': `${chain['base/root.yaml']}\nretry: {max_attempts: 0}\n` });
    const error = configError(() => loadConfig(join(dir, 'nodes/trainer.yaml'), { env: {} }));
    expect(error.message).toBe(`${join(dir, 'base/root.yaml')}: retry.max_attempts: must be >= 1 (got 0)`);
    expect(error.issues[0]).toMatchObject({ file: join(dir, 'base/root.yaml'), path: 'retry.max_attempts', line: 6 });
  });

  it('reports a cycle with the whole chain', () => {
    const dir = writeTree({
      'a.yaml': 'extend: b.yaml\nnode_id: a\nrole: trainer\n',
      'b.yaml': 'extend: sub/c.yaml\n',
      'sub/c.yaml': 'extend: ../a.yaml\n',
    });
    const a = join(dir, 'a.yaml');
    const error = configError(() => loadConfig(a, { env: {} }));
    expect(error.message).toBe(
      `${join(dir, 'sub/c.yaml')}: extend: extend cycle: ${a} -> ${join(dir, 'b.yaml')} -> ${join(dir, 'sub/c.yaml')} -> ${a}`,
    );
  });

  it('reports a file that extends itself', () => {
    const dir = writeTree({ 'a.yaml': 'extend: ./a.yaml\n' });
    expect(configError(() => loadConfig(join(dir, 'a.yaml'), { env: {} })).message).toContain('extend cycle');
  });

  it('names the including file and the missing path', () => {
    const dir = writeTree({ 'trainer.yaml': 'extend: missing/base.yaml\nnode_id: t\nrole: trainer\n' });
    const error = configError(() => loadConfig(join(dir, 'trainer.yaml'), { env: {} }));
    expect(error.message).toBe(
      `${join(dir, 'trainer.yaml')}: extend: file not found: "missing/base.yaml" (resolved to ${join(dir, 'missing/base.yaml')})`,
    );
  });

  it('interpolates the extend path itself', () => {
    const dir = writeTree({ 'env-prod.yaml': 'exp_name: prod\n', 'n.yaml': 'extend: env-${STAGE:dev}.yaml\nnode_id: n\nrole: trainer\n' });
    expect(loadConfig(join(dir, 'n.yaml'), { env: { STAGE: 'prod' } }).exp_name).toBe('prod');
  });

  it('resolves extend of an in-code config relative to its file name', () => {
    const dir = writeTree({ 'base.yaml': 'role: learner\nlearner: {args: {lr: 0.5}}\n' });
    const config = resolveConfig({ extend: 'base.yaml', node_id: 'x' }, { file: join(dir, 'virtual.yaml'), env: {} });
    expect(config.role).toBe('learner');
    expect(config.learner.args.lr).toBe(0.5);
  });
});

describe('interpolation', () => {
  const load = (yaml: string, env: Record<string, string>) => {
    const dir = writeTree({ 'n.yaml': `node_id: n\nrole: learner\n${yaml}` });
    return loadConfig(join(dir, 'n.yaml'), { env });
  };

  it('substitutes ${VAR} and ${VAR:default} inside strings', () => {
    const config = load('exp_name: run-${USER}-${TAG:v1}\ntracker: {run_dir: "${HOME}/runs"}\n', { USER: 'ada', HOME: '/h' });
    expect(config.exp_name).toBe('run-ada-v1');
    expect(config.tracker.run_dir).toBe('/h/runs');
  });

  it('re-reads a whole ${...} scalar as YAML: numbers and booleans', () => {
    const config = load(
      [
        'listen: {port: "${PORT:7}"}',
        'datasets:',
        '  - type: mnist',
        '    args: {download: "${DOWNLOAD:false}", root: "${ROOT:123}"}',
        '    partition:',
        '      partition_id: ${PARTITION_ID:0}',
        'learner:',
        '  args:',
        '    lr: ${LR}',
        'seed: ${SEED}',
        'heartbeat: {enabled: "${HB:true}"}',
      ].join('\n'),
      { LR: '0.5', SEED: '7' },
    );
    expect(config.listen.port).toBe(7);
    expect(config.datasets[0].partition?.partition_id).toBe(0);
    expect(config.datasets[0].args).toEqual({ download: false, root: 123 });
    expect(config.learner.args.lr).toBe(0.5);
    expect(config.seed).toBe(7);
    expect(config.heartbeat.enabled).toBe(true);
    // YAML 1.2 core schema: "no" is text, so the schema rejects it for a boolean.
    expect(configError(() => load('heartbeat: {enabled: "${HB}"}', { HB: 'no' })).message).toMatch(
      /heartbeat\.enabled: must be boolean \(got "no"\)$/,
    );
  });

  it('keeps a substituted value text where the schema expects a string', () => {
    const config = load('exp_name: ${NAME}\ntransport: {grpc: {auth_token: "${TOKEN}"}}\n', { NAME: '123', TOKEN: 'true' });
    expect(config.exp_name).toBe('123');
    expect(config.transport.grpc.auth_token).toBe('true');
  });

  it('reports a substituted value of the wrong type', () => {
    expect(configError(() => load('trainer:\n  args:\n    max_rounds: ${ROUNDS}\n', { ROUNDS: 'ten' })).message).toMatch(
      /n\.yaml: trainer\.args\.max_rounds: must be integer \(got "ten"\)$/,
    );
  });

  it('uses the default for an empty variable and writes $${ as a literal', () => {
    const config = load('exp_name: ${EMPTY:fallback}\nplugins: ["$${NOT_A_VAR}"]\n', { EMPTY: '' });
    expect(config.exp_name).toBe('fallback');
    expect(config.plugins).toEqual(['${NOT_A_VAR}']);
  });

  it('reports a missing variable with its name, file and key path', () => {
    const dir = writeTree({ 'n.yaml': 'node_id: n\nrole: learner\nlisten:\n  port: ${NODE_PORT}\n' });
    const file = join(dir, 'n.yaml');
    const error = configError(() => loadConfig(file, { env: {} }));
    expect(error.message).toBe(
      `${file}: listen.port: environment variable NODE_PORT is not set and \${NODE_PORT} has no default (write \${NODE_PORT:default} to give one)`,
    );
    expect(error.issues).toEqual([expect.objectContaining({ file, path: 'listen.port', line: 4, col: 3 })]);
  });

  it('reports a malformed reference', () => {
    const error = configError(() => resolveConfig({ node_id: 'n', role: 'learner', exp_name: '${1BAD}' }, { env: {} }));
    expect(error.message).toContain('<inline>: exp_name: malformed variable reference "${1BAD}"');
  });

  it('uses process.env when no env is given', () => {
    process.env.OIAFED_CONFIG_TEST_VAR = 'from-process';
    try {
      expect(resolveConfig({ node_id: 'n', role: 'learner', exp_name: '${OIAFED_CONFIG_TEST_VAR}' }).exp_name).toBe('from-process');
    } finally {
      delete process.env.OIAFED_CONFIG_TEST_VAR;
    }
  });
});

describe('callbacks', () => {
  it("normalises the guide's flat form to {type, args}", () => {
    const dir = writeTree({
      'n.yaml': [
        'node_id: t',
        'role: trainer',
        'callbacks:',
        '  - {type: early_stopping, patience: 5, metric: accuracy, mode: max}',
        '  - type: model_checkpoint',
        '    args: {save_dir: ./ckpt, save_best: true}',
      ].join('\n'),
    });
    expect(loadConfig(join(dir, 'n.yaml'), { env: {} }).callbacks).toEqual([
      { type: 'early_stopping', args: { patience: 5, metric: 'accuracy', mode: 'max' } },
      { type: 'model_checkpoint', args: { save_dir: './ckpt', save_best: true } },
    ]);
  });

  it('reports a key given both flat and under args', () => {
    const error = configError(() =>
      resolveConfig({ node_id: 't', role: 'trainer', callbacks: [{ type: 'x', patience: 1, args: { patience: 2 } }] }, { env: {} }),
    );
    expect(error.message).toBe('<inline>: callbacks[0].patience: given both flat and under args; write it once');
  });
});
