export type TransportErrorCode =
  | 'UNKNOWN_PEER'
  | 'UNKNOWN_METHOD'
  | 'DEADLINE_EXCEEDED'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'PAYLOAD_TOO_LARGE'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'CANCELLED'
  | 'INTERNAL'
  | 'REMOTE';

const CODES: ReadonlySet<string> = new Set<TransportErrorCode>([
  'UNKNOWN_PEER',
  'UNKNOWN_METHOD',
  'DEADLINE_EXCEEDED',
  'UNAVAILABLE',
  'UNAUTHENTICATED',
  'PAYLOAD_TOO_LARGE',
  'ALREADY_EXISTS',
  'INVALID_ARGUMENT',
  'CANCELLED',
  'INTERNAL',
  'REMOTE',
]);

/** True when `code` is one of the TransportErrorCode strings. */
export function isTransportErrorCode(code: unknown): code is TransportErrorCode {
  return typeof code === 'string' && CODES.has(code);
}

/** A failure of the transport itself (or of a remote handler, see RemoteError). */
export class TransportError extends Error {
  readonly code: TransportErrorCode;
  /** Node id of the peer involved, when known. */
  readonly remote?: string;
  readonly method?: string;

  constructor(code: TransportErrorCode, message: string, opts: { remote?: string; method?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TransportError';
    this.code = code;
    if (opts.remote !== undefined) this.remote = opts.remote;
    if (opts.method !== undefined) this.method = opts.method;
  }
}

/**
 * The remote handler threw. `code` is the remote's code when it is a TransportErrorCode, else
 * 'REMOTE'; `remoteCode` is always the code the handler chose ('REMOTE' when it chose none).
 */
export class RemoteError extends TransportError {
  readonly remoteCode: string;
  readonly remoteMessage: string;

  constructor(remoteCode: string, remoteMessage: string, opts: { remote?: string; method?: string } = {}) {
    super(
      isTransportErrorCode(remoteCode) ? remoteCode : 'REMOTE',
      `${opts.remote ?? 'remote'} failed handling '${opts.method ?? '?'}': [${remoteCode}] ${remoteMessage}`,
      opts,
    );
    this.name = 'RemoteError';
    this.remoteCode = remoteCode;
    this.remoteMessage = remoteMessage;
  }
}

/** The code a handler chose by throwing an Error with a string `code` property; 'REMOTE' otherwise. */
export function handlerErrorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length > 0 ? code : 'REMOTE';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
