import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FileChecksumError, extractTarGz, loadDataset } from '../src/index.js';
import { makeTar, makeTarEntries, tempDir, writeCifarFiles } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A temp dir holding `dest/` (where extraction goes) and `outside/` (which must stay empty). */
async function layout(): Promise<{ root: string; dest: string; outside: string }> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  const dest = join(t.dir, 'dest');
  const outside = join(t.dir, 'outside');
  await mkdir(dest);
  await mkdir(outside);
  return { root: t.dir, dest, outside };
}

const keepAll = { select: (name: string) => name };

describe('extractTarGz keeps every entry inside the destination', () => {
  it('refuses a ../ entry even when select keeps it, and writes nothing outside', async () => {
    const { root, dest, outside } = await layout();
    const archive = join(root, 'evil.tar.gz');
    await writeFile(archive, gzipSync(makeTar({ 'ok.txt': Buffer.from('fine'), '../outside/pwned.txt': Buffer.from('owned') })));
    await expect(extractTarGz(archive, dest, keepAll)).rejects.toThrow(/entry "\.\.\/outside\/pwned\.txt" refused: .*leaves the destination/);
    expect(await readdir(outside)).toEqual([]);
    expect(existsSync(join(root, 'pwned.txt'))).toBe(false);
  });

  it('refuses an absolute entry and a name that climbs out after a subfolder', async () => {
    const { root, dest, outside } = await layout();
    const absolute = join(root, 'abs.tar.gz');
    await writeFile(absolute, gzipSync(makeTar({ [join(outside, 'abs.txt')]: Buffer.from('owned') })));
    await expect(extractTarGz(absolute, dest, keepAll)).rejects.toThrow(/refused: .*leaves the destination/);
    const climbing = join(root, 'climb.tar.gz');
    await writeFile(climbing, gzipSync(makeTar({ 'a/b/../../../outside/climb.txt': Buffer.from('owned') })));
    await expect(extractTarGz(climbing, dest, keepAll)).rejects.toThrow(/refused/);
    // A select that maps a harmless name outside is refused the same way.
    const plain = join(root, 'plain.tar.gz');
    await writeFile(plain, gzipSync(makeTar({ 'x.txt': Buffer.from('owned') })));
    await expect(extractTarGz(plain, dest, { select: () => '../outside/mapped.txt' })).rejects.toThrow(/refused/);
    expect(await readdir(outside)).toEqual([]);
  });

  it('never creates a symlink from the archive, so a file "through" it stays inside', async () => {
    const { root, dest, outside } = await layout();
    const archive = join(root, 'link.tar.gz');
    const tar = makeTarEntries([
      { name: 'link', type: '2', linkname: outside },
      { name: 'link/pwned.txt', data: Buffer.from('owned') },
    ]);
    await writeFile(archive, gzipSync(tar));
    const written = await extractTarGz(archive, dest, keepAll);
    expect(written).toEqual([join(dest, 'link', 'pwned.txt')]);
    expect(lstatSync(join(dest, 'link')).isSymbolicLink()).toBe(false);
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses an entry whose folder inside the destination is a symlink leading out', async () => {
    const { root, dest, outside } = await layout();
    await symlink(outside, join(dest, 'sub'));
    const archive = join(root, 'via-link.tar.gz');
    await writeFile(archive, gzipSync(makeTar({ 'sub/pwned.txt': Buffer.from('owned') })));
    await expect(extractTarGz(archive, dest, keepAll)).rejects.toThrow(/leads through a symlink/);
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses the ../ entries of an archive made by GNU tar -P', async () => {
    const { root, dest, outside } = await layout();
    const work = join(root, 'work', 'inner');
    await mkdir(work, { recursive: true });
    await writeFile(join(root, 'work', 'gnu.txt'), 'owned');
    const archive = join(root, 'gnu.tar.gz');
    execFileSync('tar', ['-czPf', archive, '../gnu.txt'], { cwd: work });
    await expect(extractTarGz(archive, dest, keepAll)).rejects.toThrow(/entry "\.\.\/gnu\.txt" refused/);
    expect(existsSync(join(root, 'gnu.txt'))).toBe(false);
    expect(await readdir(outside)).toEqual([]);
  });
});

describe('a cifar-10 archive placed by hand', () => {
  const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

  async function placeArchive(): Promise<{ dir: string; archive: Buffer }> {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const src = join(t.dir, 'src');
    await mkdir(src);
    const batches = await writeCifarFiles(src, 2, 2);
    const archive = gzipSync(makeTar(Object.fromEntries(Object.entries(batches).map(([k, v]) => [`cifar-10-batches-bin/${k}`, v]))));
    const dir = join(t.dir, 'data');
    await mkdir(dir);
    await writeFile(join(dir, 'cifar-10-binary.tar.gz'), archive);
    return { dir, archive };
  }

  it('is checked against the standard MD5 before anything is extracted', async () => {
    const { dir } = await placeArchive();
    const load = loadDataset({ type: 'cifar10', args: { data_dir: dir, download: true, base_url: 'http://127.0.0.1:9/never' } });
    await expect(load).rejects.toBeInstanceOf(FileChecksumError);
    await expect(load).rejects.toThrow(/cifar-10-binary\.tar\.gz: md5 mismatch, expected c32a1d4ab5d03f1284b67883e8d87530/);
    expect(existsSync(join(dir, 'cifar-10-batches-bin'))).toBe(false);
  });

  it('is extracted when it matches the checksum the config names', async () => {
    const { dir, archive } = await placeArchive();
    const checksums = { 'cifar-10-binary.tar.gz': md5(archive) };
    const { train } = await loadDataset({ type: 'cifar10', split: 'train', args: { data_dir: dir, download: true, checksums } });
    expect(train?.length).toBe(10);
    expect((await readFile(join(dir, 'cifar-10-batches-bin', 'test_batch.bin'))).length).toBe(2 * 3073);
  });
});
