import { describe, expect, it } from 'vitest';
import { ConfigError, parsePeerAddress } from '@oiafed/config';

describe('parsePeerAddress', () => {
  it('parses id@host:port', () => {
    expect(parsePeerAddress('trainer@127.0.0.1:50051')).toEqual({ nodeId: 'trainer', host: '127.0.0.1', port: 50051 });
    expect(parsePeerAddress('learner_0@node-1.example:0')).toEqual({ nodeId: 'learner_0', host: 'node-1.example', port: 0 });
  });

  it('parses a bracketed IPv6 host and returns it without brackets', () => {
    expect(parsePeerAddress('trainer@[::1]:50051')).toEqual({ nodeId: 'trainer', host: '::1', port: 50051 });
  });

  it.each([
    ['trainer@host', 'the port is missing'],
    ['127.0.0.1:50051', 'the "id@" part is missing'],
    ['trainer@:50051', 'the host is missing'],
    ['trainer@host:http', 'the port is not a number'],
    ['trainer@host:70000', 'the port must be 0-65535'],
    ['trainer@::1:50051', 'write an IPv6 host in brackets'],
    ['trainer@[::1]', 'the port is missing'],
    ['bad id@host:1', 'the node id may only hold'],
  ])('rejects %s (%s) and shows the expected form', (address, why) => {
    let error: unknown;
    try {
      parsePeerAddress(address);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('<inline>: connect_to: expected id@host:port, e.g. trainer@127.0.0.1:50051');
    expect(message).toContain(why);
    expect(message).toContain(`(got ${JSON.stringify(address)})`);
  });

  it('names the place given by the caller', () => {
    expect(() => parsePeerAddress('x', { file: '--connect', path: 'argv' })).toThrow(/^--connect: argv: expected id@host:port/);
  });
});
