/**
 * Human-readable byte sizes, as the deployment guide writes them for log rotation ("100 MB").
 */

const UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parses a size such as `"100 MB"`, `"10KB"`, `"1.5 GB"`, `"512 B"` or `"4 MiB"` into bytes.
 * `KB`/`MB`/`GB`/`TB` are decimal (1000-based, as loguru reads them), `KiB`/`MiB`/`GiB`/`TiB`
 * binary; units are case-insensitive and always mean bytes. A bare number is bytes.
 *
 * @throws Error naming the text and the accepted form when it is not a positive size.
 */
export function parseSize(text: string): number {
  if (typeof text !== 'string') {
    throw new Error(`invalid size ${JSON.stringify(text)}: expected a string such as "100 MB"`);
  }
  const match = SIZE_PATTERN.exec(text.trim());
  const factor = match ? UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || factor === undefined) {
    throw new Error(
      `invalid size ${JSON.stringify(text)}: expected a number and a unit such as "100 MB", "10 KB", ` +
        `"1.5 GB" or "4 MiB" (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`,
    );
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (bytes < 1) {
    throw new Error(`invalid size ${JSON.stringify(text)}: must be at least 1 byte`);
  }
  return bytes;
}
