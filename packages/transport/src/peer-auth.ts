// Who may talk to a listening node, and as whom: bearer tokens (one shared, or one per node id)
// and, with mutual TLS, the client certificate's names. Node ids that arrive on the wire are
// checked here too, before anything logs or stores them.
import type { PeerCertificate } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { TransportError } from './errors.js';

/** Same rule as @oiafed/config's NODE_ID_PATTERN (tests/faults checks that they agree). */
export const NODE_ID_RE = /^[A-Za-z0-9_.-]+$/;
/** Longest node id accepted from config or the wire. */
export const MAX_NODE_ID_LENGTH = 128;

/** Why `id` is not an acceptable node id, or undefined when it is. Never echoes the id. */
export function nodeIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id.length === 0) return 'node id is empty';
  if (id.length > MAX_NODE_ID_LENGTH) return `node id is ${id.length} characters long (at most ${MAX_NODE_ID_LENGTH})`;
  if (!NODE_ID_RE.test(id)) return 'node id may only hold letters, digits, "_", "." and "-"';
  return undefined;
}

/** Registration metadata limits: a peer's announcement is small (type, capabilities, counts). */
const MAX_METADATA_ENTRIES = 32;
const MAX_METADATA_VALUE = 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Why a Register frame's role or metadata is refused (they end up in logs and PeerInfo), or
 * undefined. Role: empty or id-shaped; metadata: few entries, id-shaped keys, short values
 * without control characters.
 */
export function registrationFieldsProblem(role: string, metadata: Record<string, string>): string | undefined {
  if (role !== '' && nodeIdProblem(role)) return `register.role: ${nodeIdProblem(role)!.replace('node id', 'role')}`;
  const entries = Object.entries(metadata);
  if (entries.length > MAX_METADATA_ENTRIES) return `register.metadata has ${entries.length} entries (at most ${MAX_METADATA_ENTRIES})`;
  for (const [key, value] of entries) {
    if (nodeIdProblem(key)) return `register.metadata key: ${nodeIdProblem(key)!.replace('node id', 'key')}`;
    if (value.length > MAX_METADATA_VALUE) return `register.metadata.${key} is ${value.length} characters long (at most ${MAX_METADATA_VALUE})`;
    if (CONTROL.test(value)) return `register.metadata.${key} holds control characters`;
  }
  return undefined;
}

export interface PeerAuthOptions {
  /** One token shared by every peer. */
  authToken?: string;
  /** One token per node id: a peer must present the token of the id it claims. */
  authTokens?: Record<string, string>;
  /** Mutual TLS is required and a client certificate's CN or a SAN must equal the claimed node id. */
  bindCertificate?: boolean;
}

/** Compares in time that depends only on the lengths (a mismatch position does not leak). */
function sameSecret(got: string, want: string): boolean {
  if (got.length !== want.length) return false;
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff |= got.charCodeAt(i) ^ want.charCodeAt(i);
  return diff === 0;
}

function bearer(md: grpc.Metadata): string | undefined {
  const got = md.get('authorization')[0];
  if (typeof got !== 'string' || !got.startsWith('Bearer ')) return undefined;
  return got.slice('Bearer '.length);
}

/** CN and DNS/URI subject alternative names of a peer certificate. */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  if (!cert || !cert.subject) return [];
  const cn = cert.subject.CN as string | string[] | undefined;
  const names = Array.isArray(cn) ? [...cn] : cn ? [cn] : [];
  for (const entry of (cert.subjectaltname ?? '').split(', ')) {
    const m = /^(DNS|URI):(.*)$/.exec(entry);
    if (m) names.push(m[2]!);
  }
  return names;
}

/** Checks the credentials of incoming calls and streams against a PeerAuthOptions. */
export class PeerAuth {
  private readonly tokens?: ReadonlyMap<string, string>;

  constructor(private readonly o: PeerAuthOptions) {
    if (o.authToken !== undefined && (typeof o.authToken !== 'string' || o.authToken.length === 0))
      throw new TransportError('INVALID_ARGUMENT', 'authToken is empty: an empty token would let every client in; leave it out or set a secret');
    if (o.authTokens !== undefined) {
      const entries = Object.entries(o.authTokens);
      for (const [id, token] of entries) {
        if (nodeIdProblem(id)) throw new TransportError('INVALID_ARGUMENT', `authTokens: key '${id.slice(0, 40)}': ${nodeIdProblem(id)}`);
        if (typeof token !== 'string' || token.length === 0) throw new TransportError('INVALID_ARGUMENT', `authTokens.${id} is empty`);
      }
      if (entries.length === 0) throw new TransportError('INVALID_ARGUMENT', 'authTokens is empty: it would let no client in; leave it out or list node ids');
      this.tokens = new Map(entries);
    }
  }

  /** Whether incoming calls need a token at all. */
  get requiresToken(): boolean {
    return this.tokens !== undefined || this.o.authToken !== undefined;
  }

  /** Whether the claimed node id is bound to a credential (per-node token or certificate). */
  get bindsIdentity(): boolean {
    return this.tokens !== undefined || this.o.bindCertificate === true;
  }

  /**
   * First gate, before the peer says who it is: the bearer token is the shared one or one of
   * the per-node ones. Every token is compared, so the time does not say which one matched.
   */
  admits(md: grpc.Metadata): boolean {
    if (!this.requiresToken) return true;
    const got = bearer(md);
    if (got === undefined) return false;
    if (!this.tokens) return sameSecret(got, this.o.authToken!);
    let ok = false;
    for (const want of this.tokens.values()) ok = sameSecret(got, want) || ok;
    return ok;
  }

  /** Why a peer with these credentials may not act as `nodeId`, or undefined when it may. */
  identityProblem(md: grpc.Metadata, authContext: { sslPeerCertificate?: PeerCertificate } | null | undefined, nodeId: string): string | undefined {
    if (this.tokens) {
      const want = this.tokens.get(nodeId);
      const got = bearer(md);
      if (want === undefined || got === undefined || !sameSecret(got, want)) return 'the bearer token is not the one issued to this node id';
    }
    if (this.o.bindCertificate) {
      const names = certificateNames(authContext?.sslPeerCertificate);
      if (!names.includes(nodeId)) return 'the client certificate names neither this node id in its CN nor in a DNS/URI SAN';
    }
    return undefined;
  }
}

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** Start-up warnings for a node listening on `host` with this protection (empty when none apply). */
export function listenWarnings(host: string, o: { auth: boolean; tls: boolean }): string[] {
  if (isLoopbackHost(host)) return [];
  const out: string[] = [];
  if (!o.auth)
    out.push(
      `gRPC listens on ${host}, reachable from other machines, without authentication: anyone who reaches the port can register ` +
        'as a learner and receive the model (set transport.grpc.auth_token or auth_tokens, or listen on 127.0.0.1)',
    );
  if (!o.tls)
    out.push(
      `gRPC listens on ${host} without TLS: models, updates${o.auth ? ' and the bearer token' : ''} cross the network in plaintext (set transport.grpc.tls)`,
    );
  return out;
}

/** Start-up warning for a node that dials `host` with a token but without TLS, if any. */
export function dialWarning(host: string, o: { token: boolean; tls: boolean }): string | undefined {
  if (!o.token || o.tls || isLoopbackHost(host)) return undefined;
  return `the bearer token is sent to ${host} without TLS: anyone on the path can read and reuse it (set transport.grpc.tls)`;
}
