import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { selfSignedCertificate } from './self-signed-certificate';

/** One request the receiver got. */
export interface ReceivedDelivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Answers one request; `n` counts the requests this path got, this one included (1-based). */
export type ReceiverHandler = (n: number, req: IncomingMessage, res: ServerResponse) => void;

/**
 * A local HTTPS receiver with a self-signed certificate for `name`, made at test time. Records every
 * request by path; each path answers 200 unless told otherwise.
 */
export class HttpsReceiver {
  readonly received: ReceivedDelivery[] = [];
  readonly cert: Buffer;
  private readonly handlers = new Map<string, ReceiverHandler>();
  private readonly sockets = new Set<Socket>();
  private readonly server: https.Server;
  port = 0;

  constructor(readonly name: string) {
    const { key, cert } = selfSignedCertificate(name);
    this.cert = cert;
    this.server = https.createServer({ key, cert });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const n = this.at(path).length;
        const handler = this.handlers.get(path) ?? ((_n, _req, r) => r.end('ok'));
        handler(n, req, res);
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The URL of `path` on this receiver, by name. */
  url(path: string): string {
    return `https://${this.name}:${this.port}${path}`;
  }

  /** How `path` answers from now on. */
  on(path: string, handler: ReceiverHandler): void {
    this.handlers.set(path, handler);
  }

  /** Requests received on `path`, in arrival order. */
  at(path: string): ReceivedDelivery[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
