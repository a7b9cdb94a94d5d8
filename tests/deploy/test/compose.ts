/** Reads deploy/compose/docker-compose.yml the way docker compose would, for the parts tested. */
import { join, resolve } from 'node:path';
import { deployDir, readYaml } from './helpers.js';

/** Folder of the compose file; relative paths in it resolve from here. */
export const composeDir = join(deployDir, 'compose');

/** The compose file with `<<:` merge keys applied. */
export function composeFile(): any {
  return readYaml(join(composeDir, 'docker-compose.yml'), true);
}

/** Resolves compose's `${VAR:-default}` / `${VAR}` with an empty host environment. */
export function composeInterpolate(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, def?: string) => def ?? '');
}

/** A service's `environment` (map or KEY=VALUE list) with compose defaults applied. */
export function composeEnv(service: any): Record<string, string> {
  const raw = service.environment ?? {};
  const entries: [string, string][] = Array.isArray(raw)
    ? raw.map((s: string) => [s.split('=')[0]!, s.slice(s.indexOf('=') + 1)])
    : Object.entries(raw).map(([k, v]) => [k, String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, composeInterpolate(v)]));
}

/** One `volumes:` entry in short syntax, split. */
export function parseVolume(spec: string): { source: string; target: string; mode?: string; bind: boolean } {
  const [source, target, mode] = spec.split(':');
  if (!source || !target) throw new Error(`volume "${spec}": expected SOURCE:TARGET[:MODE]`);
  return { source, target, mode, bind: source.startsWith('.') || source.startsWith('/') };
}

/** Absolute host path of the file a service mounts at /config/node.yaml. */
export function configMountSource(name: string, service: any): string {
  const mount = (service.volumes ?? []).map(parseVolume).find((v: { target: string }) => v.target === '/config/node.yaml');
  if (!mount) throw new Error(`service ${name}: nothing mounted at /config/node.yaml`);
  return resolve(composeDir, mount.source);
}
