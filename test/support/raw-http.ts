import { connect } from 'node:net';

/** One response read off a raw connection. */
export interface RawResponse {
  status: number;
  /** The status line and the header lines, as sent. */
  head: string;
  /** Header values by lower-case name (the last one when repeated). */
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  body: any;
}

/** What a raw exchange saw: every response, in order, and whether the server closed the connection. */
export interface RawExchange {
  responses: RawResponse[];
  /** False when the connection was still open after `giveUpAfterMs`. */
  closed: boolean;
  /** Bytes after the last complete response (latin1). */
  rest: string;
}

/**
 * A step of a raw exchange: bytes to write, a pause in milliseconds, or a wait until the server has sent this many
 * complete responses (or closed the connection).
 */
export type RawStep = string | Buffer | number | { afterResponses: number };

/**
 * Opens a connection to the server at `baseUrl` and plays `steps` on it (they stop as soon as the server closes the
 * connection, so an endless generator trickles until then), reading until the server closes the connection, or
 * until `giveUpAfterMs` (a guard against a hung test, not a timing under test: `closed` is then false). With
 * `hangUp`, the client itself closes the connection (a reset) once the steps are played.
 */
export function rawExchange(
  baseUrl: string,
  steps: Iterable<RawStep>,
  { giveUpAfterMs = 20_000, hangUp = false }: { giveUpAfterMs?: number; hangUp?: boolean } = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = (byServer: boolean) => {
      clearTimeout(guard);
      closed = true;
      socket.destroy();
      resolve({ ...parseResponses(Buffer.concat(chunks)), closed: byServer });
    };
    const guard = setTimeout(() => finish(false), giveUpAfterMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => {
      if (!closed) finish(true);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the server answered and closed is a close; before any answer it is the test's failure.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      clearTimeout(guard);
      reject(err);
    });
    /** Resolves at the next bytes from the server, or when the connection closes. */
    const nextBytes = () =>
      new Promise<void>((resolveNext) => {
        const done = () => {
          socket.off('data', done);
          socket.off('close', done);
          resolveNext();
        };
        socket.on('data', done);
        socket.on('close', done);
      });
    socket.on('connect', () => {
      void (async () => {
        for (const step of steps) {
          if (closed || socket.destroyed || !socket.writable) return;
          if (typeof step === 'number') await new Promise((r) => setTimeout(r, step));
          else if (typeof step === 'object' && !Buffer.isBuffer(step)) {
            while (!closed && parseResponses(Buffer.concat(chunks)).responses.length < step.afterResponses)
              await nextBytes();
          } else socket.write(step);
        }
        if (hangUp && !closed) finish(false);
      })();
    });
  });
}

/** Splits what a server sent into responses (framed by Content-Length, or chunked; interim ones have no body). */
export function parseResponses(bytes: Buffer): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) break;
    const head = bytes.subarray(at, end).toString('latin1');
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const status = Number(head.split(' ')[1]);
    let bodyStart = end + 4;
    let body: Buffer;
    if (status >= 100 && status < 200) {
      // An interim response (100 Continue) has no body.
      body = Buffer.alloc(0);
      at = bodyStart;
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (bodyStart + length > bytes.length) break;
      body = bytes.subarray(bodyStart, bodyStart + length);
      at = bodyStart + length;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', bodyStart, 'latin1');
        if (lineEnd < 0) break;
        const size = parseInt(bytes.subarray(bodyStart, lineEnd).toString('latin1'), 16);
        if (size === 0) {
          bodyStart = lineEnd + 4;
          break;
        }
        parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
        bodyStart = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
      at = bodyStart;
    } else {
      body = bytes.subarray(bodyStart);
      at = bytes.length;
    }
    const text = body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    responses.push({ status, head, headers, text, body: parsed });
  }
  return { responses, rest: bytes.subarray(at).toString('latin1') };
}
