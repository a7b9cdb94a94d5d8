/**
 * Server-Sent Events fan-out with bounds: at most `maxClients` open streams, and a client whose
 * socket buffer passes `maxBufferedBytes` (a stalled tab, a slow phone link) is dropped instead of
 * letting its backlog grow in the trainer's memory. A dropped EventSource reconnects by itself and
 * gets a fresh snapshot, so nothing is lost for the viewer.
 */
import type { ServerResponse } from 'node:http';

/** Options of {@link SseHub}. */
export interface SseHubOptions {
  /** Open streams allowed at once; further ones get 503. */
  maxClients: number;
  /** Bytes a client may have queued before it is dropped. */
  maxBufferedBytes: number;
  /** A comment line this often keeps proxies from closing idle streams (ms; 0 = never). */
  keepAliveMs: number;
}

/** Formats one SSE frame; data is JSON on a single line, so no `data:` splitting is needed. */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The set of open event streams. */
export class SseHub {
  /** Open streams, each with the backlog it may reach before it is dropped. */
  private readonly clients = new Map<ServerResponse, number>();
  private readonly timer?: NodeJS.Timeout;
  /** Clients dropped because they fell behind (for logs and tests). */
  dropped = 0;

  constructor(private readonly options: SseHubOptions) {
    if (options.keepAliveMs > 0) {
      this.timer = setInterval(() => this.writeAll(': keep-alive\n\n'), options.keepAliveMs);
      this.timer.unref();
    }
  }

  /** Open streams. */
  get size(): number {
    return this.clients.size;
  }

  /** Whether another client may connect. */
  get full(): boolean {
    return this.clients.size >= this.options.maxClients;
  }

  /** Starts an event stream on `res` and sends `first` (the snapshot frame) on it. */
  open(res: ServerResponse, first: string): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const opening = `retry: 2000\n\n${first}`;
    // A long run's snapshot can exceed the bound by itself: a client may always be one snapshot behind.
    this.clients.set(res, this.options.maxBufferedBytes + Buffer.byteLength(opening));
    res.on('close', () => this.clients.delete(res));
    this.write(res, opening);
  }

  /** Sends one event to every open stream. */
  broadcast(event: string, data: unknown): void {
    if (this.clients.size > 0) this.writeAll(sseFrame(event, data));
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    if (this.timer) clearInterval(this.timer);
    for (const res of this.clients.keys()) res.end();
    this.clients.clear();
  }

  private writeAll(frame: string): void {
    for (const res of this.clients.keys()) this.write(res, frame);
  }

  private write(res: ServerResponse, frame: string): void {
    if (res.writableLength > (this.clients.get(res) ?? this.options.maxBufferedBytes)) {
      this.dropped++;
      this.clients.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }
}
