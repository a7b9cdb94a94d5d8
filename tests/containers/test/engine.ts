/**
 * A private container engine for the container suite: Debian's dockerd (vfs storage, no bridge,
 * no iptables) on a socket in a temp dir, buildah for the builds, and an offline stand-in for the
 * official node image made from Debian itself (debootstrap + this machine's node, npm and CA
 * bundle). Everything lives under one temp dir that {@link Engine.close} unmounts and deletes.
 *
 * Nothing here names a host: the Debian mirror comes from this machine's apt sources, the npm
 * registry and proxies from this machine's npm config and environment, at test time.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The tag the Dockerfile is built under, and the stand-in passed as its NODE_IMAGE build arg. */
export const IMAGE = 'oiafed-ts:containers-test';
export const BASE_IMAGE = 'localhost/oiafed-test-node:20';
const HOST_CA = '/usr/local/share/ca-certificates-host/bundle.crt';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit (callers assert on `code`). */
export function sh(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env: options.env ?? process.env, cwd: options.cwd, timeout: options.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Like {@link sh}, but a non-zero exit is an error carrying the command's output. */
export async function must(command: string, args: string[], options: Parameters<typeof sh>[2] = {}): Promise<string> {
  const result = await sh(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
  }
  return result.stdout;
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** This machine's Debian codename (the stand-in base must run this machine's node binary). */
function codename(): string | undefined {
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  return /^VERSION_CODENAME=(\w+)$/m.exec(osRelease)?.[1];
}

/** The first `deb` URI apt already uses for `suite`, from one-line .list files or deb822 .sources files. */
export function debianMirror(suite = codename()): string | undefined {
  if (!suite) return undefined;
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').filter((f) => /\.(list|sources)$/.test(f))];
  for (const file of files) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    for (const line of text.split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (m && m[2] === suite) return m[1];
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (field('Types').includes('deb') && field('Suites').includes(suite) && !/^Enabled:\s*no/im.test(stanza)) return field('URIs')[0];
    }
  }
  return undefined;
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
}

/** Why the suite cannot run here, or undefined when it can (dockerd starting is checked later). */
export function missingRequirement(): string | undefined {
  if (process.platform !== 'linux') return 'containers need Linux';
  if (process.getuid?.() !== 0) return 'not root: dockerd, buildah and debootstrap need root';
  for (const command of ['dockerd', 'docker', 'buildah', 'debootstrap', 'docker-compose', 'tar', 'mount']) {
    if (!onPath(command)) return `${command} is not installed (apt-get install docker.io buildah debootstrap docker-compose; .ci/run does it)`;
  }
  if (!debianMirror()) return 'no Debian mirror for this release in /etc/apt/sources.list{,.d} (debootstrap needs one)';
  return undefined;
}

export class Engine {
  readonly dir = mkdtempSync(join(tmpdir(), 'oiafed-containers-'));
  readonly socket = join(this.dir, 'docker.sock');
  readonly env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${this.socket}` };
  /** Seconds each preparation step took, for docs/deployment.md. */
  readonly timings: Record<string, number> = {};
  private dockerd?: ChildProcess;

  /** buildah keeps RUN --mount=type=cache dirs and scratch files under $TMPDIR (else /var/tmp): keep them in ours. */
  private buildah(args: string[], timeoutMs?: number): Promise<string> {
    mkdirSync(join(this.dir, 'tmp'), { recursive: true });
    return must('buildah', [...this.buildahArgs(), ...args], { env: { ...process.env, TMPDIR: join(this.dir, 'tmp') }, timeoutMs });
  }

  private buildahArgs(): string[] {
    const driver = readFileSync('/proc/filesystems', 'utf8').includes('overlay') ? 'overlay' : 'vfs';
    return ['--root', join(this.dir, 'buildah'), '--runroot', join(this.dir, 'buildah-run'), '--storage-driver', driver];
  }

  docker(args: string[], timeoutMs?: number): Promise<CommandResult> {
    return sh('docker', args, { env: this.env, timeoutMs });
  }

  async timed<T>(step: string, work: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await work();
    } finally {
      this.timings[step] = Math.round((performance.now() - start) / 100) / 10;
    }
  }

  /**
   * Starts dockerd; resolves to why it could not start, or undefined once it answers. overlay2
   * where the kernel and backing filesystem allow it (a container starts in about a second), else
   * vfs, which copies the whole 570 MB image for every container (tens of seconds each).
   */
  async startDockerd(): Promise<string | undefined> {
    const overlay = readFileSync('/proc/filesystems', 'utf8').includes('overlay');
    const problems: string[] = [];
    for (const driver of overlay ? ['overlay2', 'vfs'] : ['vfs']) {
      const problem = await this.startDockerdWith(driver);
      if (!problem) return undefined;
      problems.push(`${driver}: ${problem}`);
      unmountUnder(this.dir);
      rmSync(join(this.dir, 'docker'), { recursive: true, force: true });
      rmSync(join(this.dir, 'exec'), { recursive: true, force: true });
    }
    return problems.join('\n');
  }

  private async startDockerdWith(driver: string): Promise<string | undefined> {
    const log = join(this.dir, `dockerd-${driver}.log`);
    const args = [
      `--storage-driver=${driver}`, '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip6tables=false',
      `--data-root=${join(this.dir, 'docker')}`, `--exec-root=${join(this.dir, 'exec')}`,
      `--pidfile=${join(this.dir, 'docker.pid')}`, `--host=unix://${this.socket}`,
    ];
    const out = openSync(log, 'a');
    this.dockerd = spawn('dockerd', args, { stdio: ['ignore', out, out] });
    // A worker killed mid-run (timeout) must not leave a daemon behind: kill it on the way out.
    process.once('exit', () => this.emergencyStop());
    const exited = new Promise<string>((resolve) => this.dockerd!.once('exit', (code) => resolve(`dockerd exited ${code}`)));
    for (let i = 0; i < 120; i++) {
      const early = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))]);
      if (early) return `${early}: ${readFileSync(log, 'utf8').slice(-1500)}`;
      if ((await this.docker(['version', '--format', '{{.Server.Version}}'], 10_000)).code === 0) return undefined;
    }
    this.dockerd.kill('SIGKILL');
    return `dockerd did not answer within 60 s: ${readFileSync(log, 'utf8').slice(-1500)}`;
  }

  /** A Debian root filesystem with this machine's node, npm, npm config and CA bundle, as BASE_IMAGE in buildah's store. */
  async buildBaseImage(): Promise<void> {
    const rootfs = join(this.dir, 'rootfs');
    await this.timed('debootstrap', () =>
      must('debootstrap', ['--variant=minbase', codename()!, rootfs, debianMirror()!], { timeoutMs: 900_000 }),
    );
    await this.addNode(rootfs);
    const context = join(this.dir, 'base');
    mkdirSync(context);
    await must('tar', ['-C', rootfs, '-cf', join(context, 'rootfs.tar'), '.']);
    rmSync(rootfs, { recursive: true, force: true });
    const env = Object.entries(await proxyEnv()).map(([k, v]) => `ENV ${k}=${JSON.stringify(v)}\n`).join('');
    writeFileSync(join(context, 'Containerfile'), `FROM scratch\nADD rootfs.tar /\nENV NODE_EXTRA_CA_CERTS=${HOST_CA}\n${env}CMD ["node"]\n`);
    await this.timed('base image', () =>
      this.buildah(['bud', '--network', 'host', '-f', join(context, 'Containerfile'), '-t', BASE_IMAGE, context]),
    );
    rmSync(context, { recursive: true, force: true });
  }

  /** Where the official image has them: /usr/local/bin/{node,npm,npx}, npm under /usr/local/lib/node_modules. */
  private async addNode(rootfs: string): Promise<void> {
    const npmDir = (await must('npm', ['root', '-g'])).trim();
    mkdirSync(join(rootfs, 'usr/local/lib/node_modules'), { recursive: true });
    cpSync(process.execPath, join(rootfs, 'usr/local/bin/node'));
    cpSync(join(npmDir, 'npm'), join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx'));
    // npm may reach its registry through a proxy with its own CA: the image trusts what this machine trusts.
    mkdirSync(dirname(join(rootfs, HOST_CA)), { recursive: true });
    cpSync(hostCaBundle(), join(rootfs, HOST_CA));
    writeFileSync(join(rootfs, 'usr/local/etc/npmrc'), await npmConfig());
    const aptProxy = (await sh('apt-config', ['dump'])).stdout.split('\n').filter((l) => /^Acquire::\w+::Proxy /i.test(l));
    if (aptProxy.length > 0) writeFileSync(join(rootfs, 'etc/apt/apt.conf.d/90proxy'), aptProxy.join('\n') + '\n');
  }

  /** Builds deploy/docker/Dockerfile from the repository root, as docs/deployment.md shows, into dockerd. */
  async buildImage(repoRoot: string): Promise<void> {
    await this.timed('dockerfile build', () =>
      this.buildah([
        // docker format: the OCI format has no HEALTHCHECK, buildah would drop it. --jobs 2: both stages at once.
        'bud', '--format', 'docker', '--jobs', '2', '--network', 'host',
        // buildah 1.28 does not yet read <Dockerfile>.dockerignore by itself (BuildKit does).
        '--ignorefile', join(repoRoot, 'deploy/docker/Dockerfile.dockerignore'),
        '--build-arg', `NODE_IMAGE=${BASE_IMAGE}`,
        '-f', join(repoRoot, 'deploy/docker/Dockerfile'), '-t', `localhost/${IMAGE}`, repoRoot,
      ], 1_200_000),
    );
    const archive = join(this.dir, 'image.tar');
    await this.timed('load into dockerd', async () => {
      await this.buildah(['push', `localhost/${IMAGE}`, `docker-archive:${archive}:${IMAGE}`]);
      const loaded = await this.docker(['load', '-i', archive]);
      if (loaded.code !== 0) throw new Error(`docker load: ${loaded.stderr}`);
    });
    rmSync(archive, { force: true });
  }

  /** Synchronous last resort (process exit): SIGKILL the daemons, unmount and delete. */
  private emergencyStop(): void {
    if (!existsSync(this.dir)) return;
    if (this.dockerd?.exitCode === null) this.dockerd.kill('SIGKILL');
    killPidFile(join(this.dir, 'exec/containerd/containerd.pid'));
    unmountUnder(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Removes every container, stops dockerd (SIGKILL after 20 s), unmounts and deletes the temp dir. */
  async close(): Promise<void> {
    if (this.dockerd && this.dockerd.exitCode === null) {
      const ids = (await this.docker(['ps', '-aq'], 30_000)).stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await this.docker(['rm', '-f', '-v', ...ids], 60_000);
      const exited = new Promise((r) => this.dockerd!.once('exit', r));
      this.dockerd.kill('SIGTERM');
      const timer = setTimeout(() => this.dockerd?.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    killPidFile(join(this.dir, 'exec/containerd/containerd.pid'));
    await this.buildah(['rm', '--all'], 60_000).catch(() => undefined);
    unmountUnder(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function hostCaBundle(): string {
  const fromEnv = process.env.NODE_EXTRA_CA_CERTS;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  return ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'].find((f) => existsSync(f))!;
}

/** The registry and proxies npm uses on this machine, with the copied CA bundle. */
async function npmConfig(): Promise<string> {
  const lines = [`cafile=${HOST_CA}`];
  for (const key of ['registry', 'proxy', 'https-proxy', 'noproxy']) {
    const value = (await sh('npm', ['config', 'get', key])).stdout.trim();
    if (value && value !== 'null' && value !== 'undefined') lines.push(`${key}=${value}`);
  }
  return lines.join('\n') + '\n';
}

/** Proxy variables of this environment, for RUN steps in the image (none when there are none). */
async function proxyEnv(): Promise<Record<string, string>> {
  const names = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];
  return Object.fromEntries(names.filter((n) => process.env[n]).map((n) => [n, process.env[n]!]));
}

function killPidFile(file: string): void {
  const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : NaN;
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Lazily unmounts every mount below `dir` (container rootfs, shm, buildah overlay), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((point): point is string => !!point && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
}
