import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real Postgres or Redis, so a test can make the dependency unreachable
 * (`cut()`: drop every connection and refuse new ones) or hang (`freeze()`: connections stay open, nothing gets
 * through) and bring it back (`restore()`), without touching the shared server itself.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private frozen = false;
  /** Connections (both ends) that pass nothing any more, see {@link orphan}. */
  private readonly orphaned = new Set<Socket>();
  /** New connections pass the server's first reply (the login's) and then freeze, see {@link freezeAfterLogin}. */
  private freezingAfterLogin = false;
  /** The next bytes a server sends are dropped with their connection, see {@link loseNextAnswer}. */
  private losingNextAnswer = false;
  /** The next answer holding these bytes (latin1) is dropped with its connection, see {@link loseAnswerHolding}. */
  private losingAnswerHolding: string | null = null;
  /** A command whose answer, once delivered, cuts every connection (lower case), see {@link cutAfterAnswerTo}. */
  private cuttingAfter: string | null = null;
  /** Bytes (and ends: null) held back while frozen, per destination, in order. */
  private readonly held: [Socket, Buffer | null][] = [];
  port = 0;
  /** Connections refused since the last {@link cut}: proof that a client tried during the outage. */
  refused = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** A started proxy in front of the server of a `postgres://` or `redis://` URL (default ports assumed). */
  static async inFrontOf(url: string): Promise<TcpProxy> {
    const u = new URL(url);
    const port = Number(u.port || (u.protocol.startsWith('redis') ? 6379 : 5432));
    return new TcpProxy(u.hostname, port).start();
  }

  async start(): Promise<this> {
    // Half-open allowed: a side's end is passed on like its bytes (and held back by a freeze like them), so a
    // frozen server never closes its side when a client ends its own, as a server that hangs would not.
    const server = createServer({ allowHalfOpen: true }, (client) => {
      if (this.refusing) {
        this.refused += 1;
        client.destroy();
        return;
      }
      const upstream = connect({ port: this.targetPort, host: this.targetHost, allowHalfOpen: true });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      let replies = 0;
      let cutOnAnswer = false;
      const frozenAfterLogin = this.freezingAfterLogin;
      const forward = (to: Socket) => (chunk: Buffer) => {
        const fromServer = to === client;
        if (this.orphaned.has(to)) return;
        if (
          !fromServer &&
          this.cuttingAfter &&
          chunk.toString('latin1').toLowerCase().includes(this.cuttingAfter)
        ) {
          this.cuttingAfter = null;
          cutOnAnswer = true;
        } else if (fromServer && cutOnAnswer) {
          cutOnAnswer = false;
          to.write(chunk, () => this.cut());
          return;
        }
        const holding =
          fromServer &&
          this.losingAnswerHolding !== null &&
          chunk.toString('latin1').includes(this.losingAnswerHolding);
        if (fromServer && (this.losingNextAnswer || holding)) {
          this.losingNextAnswer = false;
          if (holding) this.losingAnswerHolding = null;
          client.destroy();
          upstream.destroy();
          return;
        }
        if (this.frozen || (frozenAfterLogin && fromServer && replies >= 1)) this.held.push([to, chunk]);
        else to.write(chunk);
        if (fromServer) replies += 1;
      };
      const forwardEnd = (to: Socket) => () => {
        if (this.frozen) this.held.push([to, null]);
        else to.end();
      };
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
      client.on('end', forwardEnd(upstream));
      upstream.on('end', forwardEnd(client));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    return this;
  }

  /** Drops every open connection and refuses new ones. */
  cut(): void {
    this.refusing = true;
    this.refused = 0;
    for (const s of this.sockets) s.destroy();
  }

  /** Keeps every connection open and accepts new ones, but lets nothing through: a server that hangs. */
  freeze(): void {
    this.frozen = true;
  }

  /**
   * Every open connection stays open and lets nothing through any more, while new ones pass: a server that failed
   * over behind a proxy that keeps the old connections open, or a network path that drops them without a reset.
   */
  orphan(): void {
    for (const s of this.sockets) this.orphaned.add(s);
  }

  /**
   * New connections get the server's first reply (for Postgres, the login) and then nothing more: a server that
   * logs a connection in and then hangs (behind a pooler that answers the login itself, or killed right after).
   * Connections already open are not touched.
   */
  freezeAfterLogin(): void {
    this.freezingAfterLogin = true;
  }

  /**
   * The next answer the server sends (on any connection) never arrives: its connection is dropped instead, both
   * ends, after the server has carried the command out. New connections pass as before.
   */
  loseNextAnswer(): void {
    this.losingNextAnswer = true;
  }

  /**
   * Like {@link loseNextAnswer}, for the next answer (on any connection) holding `text`: the server has carried out
   * the command, and its connection is dropped, both ends, instead of the answer arriving.
   */
  loseAnswerHolding(text: string): void {
    this.losingAnswerHolding = text;
  }

  /**
   * Once the answer to the next command containing `request` (its bytes as sent, compared in lower case) has been
   * delivered, does a {@link cut}: a server that goes away just after answering that command.
   */
  cutAfterAnswerTo(request: string): void {
    this.cuttingAfter = request.toLowerCase();
  }

  /** Ends a cut or a freeze; what a freeze held back goes through, in order. */
  restore(): void {
    this.refusing = false;
    this.frozen = false;
    this.freezingAfterLogin = false;
    for (const [to, chunk] of this.held.splice(0)) {
      if (to.destroyed) continue;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** `url` with its host and port replaced by this proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }
}
