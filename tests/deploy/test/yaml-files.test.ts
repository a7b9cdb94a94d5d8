import { describe, expect, it } from 'vitest';
import { deployYamlFiles, readYamlDocs, rel } from './helpers.js';

describe('YAML under deploy/', () => {
  const files = deployYamlFiles();

  it('finds the compose file, the node configs and the Kubernetes manifests', () => {
    const names = files.map(rel);
    expect(names).toContain('deploy/compose/docker-compose.yml');
    expect(names).toContain('deploy/compose/configs/trainer.yaml');
    expect(names).toContain('deploy/k8s/kustomization.yaml');
    expect(names).toContain('deploy/k8s/learner-statefulset.yaml');
  });

  it.each(files.map((f) => [rel(f), f]))('%s parses without errors or warnings', (_name, file) => {
    const docs = readYamlDocs(file, true);
    expect(docs.length).toBeGreaterThan(0);
    for (const doc of docs) expect(typeof doc).toBe('object');
  });
});
