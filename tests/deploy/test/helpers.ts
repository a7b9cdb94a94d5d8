/**
 * Shared helpers of the deployment tests: repository paths, YAML documents under deploy/, a
 * small Dockerfile reader and the bins the apps declare.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** Repository root (tests/deploy/test -> ../../..). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** deploy/ folder. */
export const deployDir = join(repoRoot, 'deploy');

/** Every file under `dir`, recursively, as absolute paths in a stable order. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

/** Path relative to the repository root, for readable test names and messages. */
export function rel(path: string): string {
  return relative(repoRoot, path);
}

/** Every `.yaml`/`.yml` file under deploy/. */
export function deployYamlFiles(): string[] {
  return listFiles(deployDir).filter((f) => /\.ya?ml$/.test(f));
}

/**
 * Parses every document of a YAML file, throwing with file, line and message on the first
 * error. `merge` enables `<<:` merge keys (YAML 1.1, used by docker compose files).
 */
export function readYamlDocs(file: string, merge = false): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { merge, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const doc of list) {
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) throw new Error(`${rel(file)}: ${problem.message}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** The single document of a YAML file. */
export function readYaml(file: string, merge = false): any {
  const docs = readYamlDocs(file, merge);
  if (docs.length !== 1) throw new Error(`${rel(file)}: expected one YAML document, found ${docs.length}`);
  return docs[0];
}

/** One Dockerfile instruction with its stage (0-based `FROM` index) and arguments. */
export interface DockerInstruction {
  stage: number;
  keyword: string;
  /** Raw text after the keyword, continuation lines joined. */
  raw: string;
  /** The exec (JSON array) form when `raw` is one; `undefined` for shell form. */
  exec?: string[];
  line: number;
}

/**
 * Reads a Dockerfile into instructions: comments dropped, `\` continuations joined, JSON exec
 * forms decoded. Enough for checks on EXPOSE/ENTRYPOINT/CMD/HEALTHCHECK/FROM.
 */
export function parseDockerfile(text: string): DockerInstruction[] {
  const lines = text.split(/\r?\n/);
  const out: DockerInstruction[] = [];
  let stage = -1;
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#.*)?$/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = line.replace(/\\\s*$/, ' ') + next.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot read instruction: ${line}`);
    const keyword = m[1]!.toUpperCase();
    const raw = m[2]!.trim();
    if (keyword === 'FROM') stage++;
    let exec: string[] | undefined;
    const jsonPart = keyword === 'HEALTHCHECK' ? /\bCMD\s+(\[.*\])\s*$/.exec(raw)?.[1] : raw.startsWith('[') ? raw : undefined;
    if (jsonPart !== undefined) {
      const parsed: unknown = JSON.parse(jsonPart);
      if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) {
        throw new Error(`Dockerfile line ${start + 1}: ${keyword} exec form must be a JSON array of strings`);
      }
      exec = parsed;
    }
    out.push({ stage, keyword, raw, exec, line: start + 1 });
  }
  return out;
}

/** Instructions of the last stage (the image that ships). */
export function finalStage(instructions: DockerInstruction[]): DockerInstruction[] {
  const last = Math.max(...instructions.map((i) => i.stage));
  return instructions.filter((i) => i.stage === last);
}

/** `apps/<x>/package.json` bins: bin name -> absolute path of the script it runs. */
export function declaredBins(): Map<string, string> {
  const bins = new Map<string, string>();
  const appsDir = join(repoRoot, 'apps');
  for (const app of readdirSync(appsDir)) {
    const pkgFile = join(appsDir, app, 'package.json');
    let pkg: { bin?: string | Record<string, string>; name?: string };
    try {
      pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
    } catch {
      continue;
    }
    if (typeof pkg.bin === 'string' && pkg.name) bins.set(pkg.name.split('/').pop()!, join(appsDir, app, pkg.bin));
    else for (const [name, path] of Object.entries(pkg.bin ?? {})) bins.set(name, join(appsDir, app, path));
  }
  return bins;
}
