import { ConfigError, showValue } from './errors.js';
import type { PeerAddress } from './types.js';

const EXPECTED = 'expected id@host:port, e.g. trainer@127.0.0.1:50051 or trainer@[::1]:50051';
const ID = /^[A-Za-z0-9_.-]+$/;
const HOST = /^[A-Za-z0-9_.-]+$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/** Parses `id@host:port`; returns the reason instead of throwing so the loader can collect issues. */
export function checkPeerAddress(address: string): PeerAddress | { error: string } {
  const fail = (why: string) => ({ error: `${EXPECTED}; ${why} (got ${showValue(address)})` });
  const at = address.indexOf('@');
  if (at < 0) return fail('the "id@" part is missing');
  const nodeId = address.slice(0, at);
  if (!ID.test(nodeId)) return fail('the node id may only hold letters, digits, "_", "." and "-"');
  const rest = address.slice(at + 1);
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return fail('the "]" closing the IPv6 host is missing');
    host = rest.slice(1, close);
    if (!IPV6.test(host)) return fail('the bracketed host is not an IPv6 address');
    const after = rest.slice(close + 1);
    if (after === '') portText = undefined;
    else if (after.startsWith(':')) portText = after.slice(1);
    else return fail('expected ":port" after the IPv6 host');
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0 && rest.indexOf(':') !== colon) return fail('write an IPv6 host in brackets');
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
    if (!HOST.test(host)) return fail(host === '' ? 'the host is missing' : 'the host is not a host name or IPv4 address');
  }
  if (portText === undefined) return fail('the port is missing');
  if (!/^[0-9]{1,5}$/.test(portText)) return fail('the port is not a number');
  const port = Number(portText);
  if (port > 65535) return fail('the port must be 0-65535');
  return { nodeId, host, port };
}

/**
 * Parses a `connect_to` entry such as `trainer@127.0.0.1:50051` (IPv6: `trainer@[::1]:50051`,
 * returned without brackets). Throws a {@link ConfigError} that shows the expected form.
 */
export function parsePeerAddress(address: string, where: { file?: string; path?: string } = {}): PeerAddress {
  const parsed = checkPeerAddress(address);
  if ('error' in parsed) {
    throw new ConfigError([{ file: where.file ?? '<inline>', path: where.path ?? 'connect_to', message: parsed.error }]);
  }
  return parsed;
}
