/**
 * The one step every downloadable dataset shares: make sure a named file of its standard
 * distribution is in the cache folder, with the checksum it must have.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { checksumFor, resolveBaseUrl, type ArgReader } from './args.js';
import { downloadFile, verifyFileChecksum } from './download.js';
import { extractTarGz } from './tar.js';
import type { Logger } from './types.js';

/** Whether `path` exists (any kind of entry). */
export async function pathExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Where and how {@link fetchVerified} gets a file. */
export interface FetchSource {
  /** Dataset type: names the `OIAFED_<TYPE>_BASE_URL` override and the errors. */
  type: string;
  /** The standard location, used unless `args.base_url` or the env var says otherwise. */
  defaultBaseUrl: string;
  /** The file's md5 in the standard distribution (`args.checksums` may override it). */
  md5: string;
  logger: Logger;
  signal?: AbortSignal;
}

/**
 * Returns `dir/file` once it is there and matches its checksum: a file already present (placed
 * by hand or left by another tool) is verified like a fresh download, a missing one is
 * downloaded (with `args.retries` further attempts) from the base URL.
 */
export async function fetchVerified(dir: string, file: string, args: ArgReader, source: FetchSource): Promise<string> {
  const path = join(dir, file);
  const checksum = checksumFor(args, file, source.md5);
  if (await pathExists(path)) {
    await verifyFileChecksum(path, checksum);
    return path;
  }
  const url = resolveBaseUrl(source.type, args, source.defaultBaseUrl) + file;
  await downloadFile(url, path, { ...checksum, logger: source.logger, signal: source.signal, retries: args.int('retries', 2) });
  return path;
}

/**
 * Extracts the files of a .tar.gz whose base names are in `wanted` into `dir/subdir`, wherever
 * the archive keeps them (its own top folder or none), and logs what it wrote.
 */
export async function extractByName(
  archive: string,
  dir: string,
  subdir: string,
  wanted: ReadonlySet<string>,
  opts: { logger: Logger; signal?: AbortSignal },
): Promise<string[]> {
  const written = await extractTarGz(archive, dir, {
    signal: opts.signal,
    select: (name) => {
      const base = name.split('/').pop() ?? '';
      return wanted.has(base) ? join(subdir, base) : null;
    },
  });
  opts.logger.info(`extracted ${written.length} files from ${archive} into ${join(dir, subdir)}`);
  return written;
}
