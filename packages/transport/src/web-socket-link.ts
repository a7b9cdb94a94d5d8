// Learners over WebSocket (transport.web): a browser tab cannot open a gRPC stream, so the trainer
// also accepts the Connect stream's protobuf frames as binary WebSocket messages on an HTTP(S)
// server (the dashboard's). Each message is one Frame; after the register frame the socket is a
// StreamLink like any gRPC stream, so chunking, heartbeats and the per-link bounds are the same.
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { Frame, type Register } from './generated/oiafed/v1/node.js';
import { errorMessage } from './errors.js';
import { nodeServiceDefinition } from './grpc-wire.js';
import type { FrameStream, StreamLink } from './stream-link.js';
import type { Logger, PeerInfo } from './types.js';

/** Register metadata key a browser puts its bearer token in (it cannot set an Authorization header). */
export const WEB_AUTH_METADATA_KEY = 'authorization';

/**
 * Sockets open but not yet registered, at most: each may make the trainer buffer one message of up
 * to maxFrameBytes before it is refused, so an unauthenticated crowd is bounded.
 */
export const MAX_UNREGISTERED_SOCKETS = 32;

/** Close codes (RFC 6455 7.4.1) the trainer ends a learner's socket with. */
export const WebCloseCode = { normal: 1000, unsupported: 1003, invalid: 1007, policy: 1008, tooBig: 1009 } as const;

/** What GrpcTransport lends the acceptor: its checks and its table of registered peers. */
export interface WebLinkHost {
  nodeId: string;
  /** Largest WebSocket message (one frame: a chunk of at most chunkBytes plus its header). */
  maxFrameBytes: number;
  /** permessage-deflate, the WebSocket counterpart of the gRPC message compression. */
  compression: boolean;
  logger: Logger;
  refuse(host: string, reason: string, details: string): void;
  admits(md: grpc.Metadata): boolean;
  registrationProblem(md: grpc.Metadata, authContext: { sslPeerCertificate?: PeerCertificate }, r: Register): string | undefined;
  selfInfo(): { nodeId: string; role: string; metadata: Record<string, string> };
  /** Adds the peer to the transport; `end` closes the socket (hostile: the peer broke a bound). */
  join(peer: PeerInfo, stream: FrameStream, end: (reason: string, hostile: boolean) => void): { link: StreamLink; leave(reason: string): void };
}

const encodeFrame = nodeServiceDefinition.connect.responseSerialize;

/** A close frame's reason holds at most 123 bytes. */
function closeReason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.byteLength <= 123 ? text : bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '') + '...';
}

function frameStreamOf(ws: WebSocket): FrameStream {
  return {
    write(frame, done) {
      if (ws.readyState !== ws.OPEN) {
        done?.();
        return true;
      }
      // done runs once ws handed the bytes to the socket (or failed): StreamLink's flush signal.
      ws.send(encodeFrame(frame as Frame), { binary: true }, () => done?.());
      return true;
    },
  };
}

function bearerOf(value: string | undefined): string | undefined {
  return value?.startsWith('Bearer ') ? value.slice('Bearer '.length) : undefined;
}

/**
 * Accepts learners over WebSocket at `path` on an HTTP(S) server. The bearer token comes from the
 * upgrade request's Authorization header or, for browsers, the register frame's metadata
 * (`authorization: Bearer <token>`, removed before the peer's metadata is stored).
 */
export class WebSocketAcceptor {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  /** Upgrades in progress plus sockets that have not registered yet. */
  private unregistered = 0;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head);

  constructor(
    private readonly host: WebLinkHost,
    private readonly server: HttpServer | HttpsServer,
    readonly path: string,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: host.maxFrameBytes, perMessageDeflate: host.compression });
    server.on('upgrade', this.onUpgrade);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname !== this.path) {
      // Nobody else takes upgrades on this server: answer rather than leave the socket hanging.
      if (this.server.listenerCount('upgrade') === 1) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    if (this.unregistered >= MAX_UNREGISTERED_SOCKETS) {
      this.host.refuse(req.socket.remoteAddress ?? 'unknown', 'too many unregistered sockets', `${this.unregistered} sockets have not registered yet (limit ${MAX_UNREGISTERED_SOCKETS})`);
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\r\n');
      return;
    }
    this.unregistered++;
    let counted = true;
    // Registration or the socket's end, whichever comes first, takes it off the count.
    const uncount = () => {
      if (counted) this.unregistered--;
      counted = false;
    };
    socket.once('close', uncount);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.serve(ws, req, uncount));
  }

  private serve(ws: WebSocket, req: IncomingMessage, onRegistered: () => void): void {
    this.sockets.add(ws);
    const remote = req.socket.remoteAddress ?? 'unknown';
    const headerToken = bearerOf(req.headers.authorization);
    let joined: { link: StreamLink; leave(reason: string): void } | undefined;
    const refuse = (code: number, reason: string, details: string) => {
      this.host.refuse(remote, `websocket registration: ${reason}`, details);
      ws.close(code, closeReason(details));
    };
    const registerTimer = setTimeout(() => refuse(WebCloseCode.policy, 'no register frame', 'no register frame within 10 s'), 10_000);
    registerTimer.unref?.();
    const gone = (reason: string) => {
      clearTimeout(registerTimer);
      this.sockets.delete(ws);
      joined?.leave(reason);
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const frame = this.decode(ws, data, isBinary, remote);
      if (!frame) return;
      if (joined) return joined.link.receive(frame);
      clearTimeout(registerTimer);
      joined = this.register(ws, req, frame, headerToken, refuse);
      if (joined) onRegistered();
    });
    ws.on('close', (code: number) => gone(`websocket closed (${code})`));
    ws.on('error', (err: Error) => {
      // ws refuses a message over maxPayload with this error and closes with 1009.
      this.host.refuse(remote, 'websocket error', errorMessage(err));
      gone(`websocket error: ${err.message}`);
    });
  }

  /** One binary message as a Frame; anything else closes the socket. */
  private decode(ws: WebSocket, data: RawData, isBinary: boolean, remote: string): Frame | undefined {
    if (!isBinary) {
      this.host.refuse(remote, 'text message', 'a learner socket carries binary protobuf frames only');
      ws.close(WebCloseCode.unsupported, 'binary protobuf frames only');
      return undefined;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    try {
      return Frame.decode(bytes);
    } catch (err) {
      this.host.refuse(remote, 'malformed frame', errorMessage(err));
      ws.close(WebCloseCode.invalid, 'malformed frame');
      return undefined;
    }
  }

  private register(
    ws: WebSocket,
    req: IncomingMessage,
    frame: Frame,
    headerToken: string | undefined,
    refuse: (code: number, reason: string, details: string) => void,
  ): { link: StreamLink; leave(reason: string): void } | undefined {
    if (frame.kind?.$case !== 'register') {
      refuse(WebCloseCode.policy, 'not register', `first frame must be register, got ${frame.kind?.$case ?? 'empty'}`);
      return undefined;
    }
    const r = frame.kind.register;
    const { [WEB_AUTH_METADATA_KEY]: metaAuth, ...metadata } = r.metadata;
    const token = headerToken ?? bearerOf(metaAuth);
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('authorization', `Bearer ${token}`);
    if (!this.host.admits(md)) {
      refuse(WebCloseCode.policy, 'wrong token', `node '${this.host.nodeId}': missing or wrong bearer token`);
      return undefined;
    }
    const tls = req.socket as Partial<TLSSocket>;
    const cert = typeof tls.getPeerCertificate === 'function' ? tls.getPeerCertificate() : undefined;
    const problem = this.host.registrationProblem(md, { sslPeerCertificate: cert }, { ...r, metadata });
    if (problem) {
      refuse(WebCloseCode.policy, 'refused', problem);
      return undefined;
    }
    const peer: PeerInfo = { nodeId: r.nodeId, role: r.role, metadata: { ...metadata, 'oiafed.link': 'websocket' }, connectedAt: Date.now() };
    const stream = frameStreamOf(ws);
    stream.write({ kind: { $case: 'registerAck', registerAck: this.host.selfInfo() } });
    return this.host.join(peer, stream, (reason, hostile) => {
      if (hostile) ws.terminate();
      else ws.close(WebCloseCode.normal, closeReason(reason));
    });
  }

  /** Stops accepting and closes every learner socket. */
  close(): void {
    this.server.off('upgrade', this.onUpgrade);
    for (const ws of this.sockets) ws.close(WebCloseCode.normal, 'trainer stopping');
    this.sockets.clear();
    this.wss.close();
  }
}
