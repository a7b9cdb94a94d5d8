/**
 * A small streaming reader for (gzipped) tar archives: ustar, GNU long names and pax `path`
 * records; regular files only. Enough for cifar-10-binary.tar.gz without a dependency.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;

/** A header as read from the archive. */
interface TarHeader {
  name: string;
  size: number;
  type: string;
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function octal(buf: Buffer, start: number, length: number, what: string): number {
  if (buf[start] & 0x80) {
    // GNU base-256 encoding for large values.
    let v = 0;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + buf[i];
    return v;
  }
  const text = cString(buf, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: bad ${what} field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function parseHeader(block: Buffer, archive: string): TarHeader | null {
  if (block.every((b) => b === 0)) return null;
  const expected = octal(block, 148, 8, 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  if (sum !== expected) throw new Error(`tar ${archive}: header checksum mismatch (corrupt or not a tar archive)`);
  let name = cString(block, 0, 100);
  if (block.toString('latin1', 257, 262) === 'ustar') {
    const prefix = cString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const type = String.fromCharCode(block[156] || 0x30);
  return { name, size: octal(block, 124, 12, 'size'), type };
}

function paxPath(data: Buffer): string | undefined {
  const text = data.toString('utf8');
  let pos = 0;
  while (pos < text.length) {
    const space = text.indexOf(' ', pos);
    if (space === -1) break;
    const len = parseInt(text.slice(pos, space), 10);
    if (!(len > 0)) break;
    const record = text.slice(space + 1, pos + len - 1);
    if (record.startsWith('path=')) return record.slice(5);
    pos += len;
  }
  return undefined;
}

/** Whether `path` is `root` itself or below it (both absolute and normalised). */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

/** Shows an archive name in messages: printable ASCII only, at most 80 characters. */
function showName(name: string): string {
  const clean = name.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 80 ? `${clean.slice(0, 77)}...` : clean);
}

/**
 * The absolute path an entry goes to, refused when it would land outside `destDir`: a `../`
 * or absolute output path, or a directory inside `destDir` that is a symlink leading out.
 * Checked here rather than trusted to `select`, so every caller of the helper is contained.
 */
async function containedTarget(archive: string, destDir: string, entry: string, out: string): Promise<string> {
  const refuse = (why: string): Error =>
    new Error(`tar ${archive}: entry ${showName(entry)} refused: ${why}; nothing is written outside ${destDir}`);
  if (out.includes('\0')) throw refuse('its output path holds a NUL byte');
  const root = resolve(destDir);
  const target = resolve(root, out);
  if (isAbsolute(out) || !isInside(root, target) || target === root) {
    throw refuse(`its output path ${showName(out)} leaves the destination`);
  }
  await mkdir(dirname(target), { recursive: true });
  const [realRoot, realParent] = await Promise.all([realpath(root), realpath(dirname(target))]);
  if (!isInside(realRoot, realParent)) throw refuse(`${dirname(target)} leads through a symlink to ${realParent}`);
  return target;
}

/** Options of {@link extractTarGz}. */
export interface ExtractOptions {
  /**
   * Maps an archive path to an output path relative to the destination, or null to skip it.
   * An output path that leaves the destination (`../`, absolute, through a symlink) is refused.
   */
  select: (name: string) => string | null;
  signal?: AbortSignal;
}

/**
 * Extracts the selected regular files of a .tar.gz (or plain .tar) into `destDir`. Each file is
 * written to a temp name and renamed, so an interrupted extraction leaves no half file. Links and
 * other special entries are never created, and an entry whose output path would leave `destDir`
 * stops the extraction with an error. Returns the output paths written.
 */
export async function extractTarGz(archive: string, destDir: string, options: ExtractOptions): Promise<string[]> {
  const head = await readHead(archive);
  const raw = createReadStream(archive);
  let source: AsyncIterable<Buffer> = raw;
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    // pipeline forwards a read error of the file to the gunzip stream, which ends the loop below.
    pipeline(raw, gunzip).catch(() => undefined);
    source = gunzip;
  }
  const written: string[] = [];
  let pending = Buffer.alloc(0);
  let header: TarHeader | null = null;
  let remaining = 0;
  let padding = 0;
  let chunks: Buffer[] = [];
  let longName: string | undefined;
  let ended = false;

  const finishEntry = async (): Promise<void> => {
    const h = header!;
    const data = Buffer.concat(chunks);
    chunks = [];
    header = null;
    if (h.type === 'L') {
      longName = cString(data, 0, data.length);
      return;
    }
    if (h.type === 'x') {
      longName = paxPath(data) ?? longName;
      return;
    }
    const name = longName ?? h.name;
    longName = undefined;
    if (h.type !== '0' && h.type !== '\0' && h.type !== '7') return;
    const out = options.select(name);
    if (out === null) return;
    const target = await containedTarget(archive, destDir, name, out);
    const tmp = `${target}.${randomBytes(6).toString('hex')}.part`;
    try {
      await writeFile(tmp, data);
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    written.push(target);
  };

  for await (const chunk of source) {
    options.signal?.throwIfAborted();
    let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    pending = Buffer.alloc(0);
    while (buf.length > 0 && !ended) {
      if (header) {
        const take = Math.min(remaining, buf.length);
        if (take > 0) {
          const keep = header.type === 'L' || header.type === 'x' || options.select(longName ?? header.name) !== null;
          if (keep) chunks.push(Buffer.from(buf.subarray(0, take)));
          buf = buf.subarray(take);
          remaining -= take;
        }
        if (remaining === 0) await finishEntry();
        continue;
      }
      if (padding > 0) {
        const skip = Math.min(padding, buf.length);
        buf = buf.subarray(skip);
        padding -= skip;
        continue;
      }
      if (buf.length < BLOCK) {
        pending = Buffer.from(buf);
        break;
      }
      const parsed = parseHeader(buf.subarray(0, BLOCK), archive);
      buf = buf.subarray(BLOCK);
      if (parsed === null) {
        ended = true;
        break;
      }
      header = parsed;
      remaining = parsed.size;
      padding = (BLOCK - (parsed.size % BLOCK)) % BLOCK;
      if (remaining === 0) await finishEntry();
    }
    if (ended) break;
  }
  raw.destroy();
  if (header || remaining > 0) throw new Error(`tar ${archive}: archive ends inside an entry (truncated)`);
  return written;
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, 0);
    return buf;
  } finally {
    await fh.close();
  }
}
