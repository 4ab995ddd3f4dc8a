import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { nameServerResolver } from './name-server.resolver';

/** One address a host name resolved to. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has; injected so tests (and operators) can pin answers. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** True when a delivery may connect to the address (the validation lib's `isPublicAddress` in production). */
export type AddressPredicate = (address: string) => boolean;

/** One delivery attempt. */
export interface DeliveryRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /**
   * Budget for the attempt up to its answer: resolution, connect, TLS and response headers. Default 10 000. The
   * response body then has its own limits (see {@link SsrfSafeSenderOptions.drainTimeoutMs}).
   */
  timeoutMs?: number;
}

/** What happened to one attempt; {@link classifyOutcome} turns it into the delivery's next state. */
export type SendResult =
  | { kind: 'response'; status: number; retryAfterSeconds?: number }
  | { kind: 'timeout'; error: string }
  | { kind: 'network_error'; error: string }
  /** `address`: the refused address a name resolved to, for the worker's log only (never the delivery log). */
  | { kind: 'refused'; error: string; address?: string };

/** The delivery state an attempt leads to. */
export type DeliveryOutcome = 'succeeded' | 'retry' | 'failed';

/** Dependencies and limits of {@link SsrfSafeSender}; only the address predicate is required. */
export interface SsrfSafeSenderOptions {
  /** Every resolved address must pass, or the delivery is refused before any connection is made. */
  isAllowedAddress: AddressPredicate;
  /** Defaults to {@link nameServerResolver}: the name servers of `/etc/resolv.conf`, asked off libuv's thread pool. */
  resolve?: HostResolver;
  /**
   * Trust settings for tests only (a self-signed receiver). Production leaves this unset so certificates are
   * verified against the system CAs for the URL's host name.
   */
  tls?: { ca?: string | Buffer | Array<string | Buffer>; rejectUnauthorized?: boolean };
  /** Concurrent connections per receiver origin. Default 256. */
  maxSocketsPerHost?: number;
  /** Response bytes read before the connection is dropped instead of drained. Default 64 KiB. */
  maxResponseBytes?: number;
  /**
   * Time a response's body may take to arrive once its status is in, before its connection is dropped instead of
   * drained for reuse. Default 1,000 ms. {@link SsrfSafeSender.send} resolves only once the body is read or
   * dropped, so this time is part of the attempt.
   */
  drainTimeoutMs?: number;
  /** Idle time after which a pooled connection is closed. Default 4,000 ms. */
  idleSocketTimeoutMs?: number;
  /** Clock for `Retry-After` dates, in milliseconds since the epoch. */
  now?: () => number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_MAX_SOCKETS = 256;
// The attempt is decided by the status; the body is read only to reuse the connection. One that trickles in would
// otherwise keep its connection busy, out of the pool, for the rest of the attempt's 10 s. The attempt lasts until
// the body is read or its connection dropped, so the worker's slot of the attempt is held, and its request timed,
// for as long as the connection is busy: the worker never has more connections in use than attempts in flight (200,
// below the 256 of an origin's pool), and a receiver that answers at once and then trickles is judged by how long
// it keeps a connection, not by how soon its status came. At the default, a body cut off here has kept its
// attempt over the worker's 1 s limit of a slow request, so its receiver counts as slow, like one that hangs.
const DEFAULT_DRAIN_TIMEOUT_MS = 1_000;
// Below the 5 s keep-alive timeout of Node's HTTP server (and well below nginx's and load balancers'): an
// idle connection is closed here before the receiver closes it under a request we are sending.
const DEFAULT_IDLE_SOCKET_TIMEOUT_MS = 4_000;
// A pooled connection the receiver has just closed fails on first write; that is not the receiver's failure.
// Such a failure is sent again once, at once, on a new connection. Only once: a receiver that reads the POST
// and then drops the connection looks the same from here, and must not get the attempt over and over.
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * POSTs webhook deliveries without letting a receiver's DNS steer the worker into private networks: the host is
 * resolved once, every address is vetted, and the connection goes to a vetted address with no second lookup,
 * while TLS is still verified for the host name. Redirects are never followed.
 */
export class SsrfSafeSender {
  private readonly isAllowedAddress: AddressPredicate;
  private readonly resolve: HostResolver;
  /** Lookups in flight, by host name: attempts to one host at the same time share one. */
  private readonly lookups = new Map<string, Promise<ResolvedAddress[]>>();
  private readonly maxResponseBytes: number;
  private readonly drainTimeoutMs: number;
  private readonly now: () => number;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly tlsOptions: Pick<https.AgentOptions, 'ca' | 'rejectUnauthorized'>;

  constructor(options: SsrfSafeSenderOptions) {
    this.isAllowedAddress = options.isAllowedAddress;
    this.resolve = options.resolve ?? nameServerResolver();
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    const maxSockets = options.maxSocketsPerHost ?? DEFAULT_MAX_SOCKETS;
    // Keep-alive is what makes ~1,000 deliveries a second possible: a TLS handshake per POST would not keep up.
    // LIFO reuse keeps the warmest connection busy and lets idle ones age out.
    const agentOptions: http.AgentOptions = {
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      scheduling: 'lifo',
      timeout: options.idleSocketTimeoutMs ?? DEFAULT_IDLE_SOCKET_TIMEOUT_MS,
    };
    this.tlsOptions = {
      ...(options.tls?.ca !== undefined && { ca: options.tls.ca }),
      ...(options.tls?.rejectUnauthorized !== undefined && {
        rejectUnauthorized: options.tls.rejectUnauthorized,
      }),
    };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent({ ...agentOptions, ...this.tlsOptions });
  }

  /**
   * Makes one attempt, and resolves once it no longer holds a connection: after the response body is read (or its
   * connection dropped, see {@link SsrfSafeSenderOptions.drainTimeoutMs}), though its result is the status alone.
   * Never throws: every failure is a {@link SendResult}.
   */
  async send(request: DeliveryRequest): Promise<SendResult> {
    const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return { kind: 'refused', error: 'delivery refused: the URL does not parse' };
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return { kind: 'refused', error: `delivery refused: unsupported scheme ${url.protocol}` };
    }
    // URL keeps the brackets of an IPv6 literal; sockets and the predicate want the bare address.
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;

    const deadline = new Deadline(timeoutMs);
    try {
      const resolved = await this.resolveHost(host, deadline);
      if (resolved.kind !== 'addresses') return resolved.result;
      return await this.post(url, host, resolved.addresses, request, deadline);
    } finally {
      deadline.clear();
    }
  }

  /** Closes pooled connections; call on shutdown. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async resolveHost(
    host: string,
    deadline: Deadline,
  ): Promise<{ kind: 'addresses'; addresses: ResolvedAddress[] } | { kind: 'result'; result: SendResult }> {
    const literalFamily = isIP(host);
    let addresses: ResolvedAddress[];
    if (literalFamily !== 0) {
      // An IP literal names its own address: looking it up would only add a chance to disagree.
      addresses = [{ address: host, family: literalFamily }];
    } else {
      try {
        const answer = await deadline.race(this.lookup(host));
        if (answer === TIMED_OUT) {
          return {
            kind: 'result',
            result: { kind: 'timeout', error: deadline.message(`resolving ${host}`) },
          };
        }
        addresses = answer;
      } catch (error) {
        return {
          kind: 'result',
          result: { kind: 'network_error', error: `could not resolve ${host}: ${errorMessage(error)}` },
        };
      }
      if (addresses.length === 0) {
        return {
          kind: 'result',
          result: { kind: 'network_error', error: `could not resolve ${host}: no addresses` },
        };
      }
    }
    // Every address, not just the first: the connection may fall back to any of them, and a name that mixes a
    // public address with a private one is a rebinding attempt either way.
    for (const { address } of addresses) {
      if (isIP(address) === 0 || !this.isAllowedAddress(address)) {
        // The customer reads the message in the delivery log: it does not say what a name resolves to on the
        // worker's network (internal addresses, split-horizon names), only that it was refused.
        if (literalFamily !== 0) {
          return {
            kind: 'result',
            result: { kind: 'refused', error: `delivery refused: ${host} is a non-public address` },
          };
        }
        return {
          kind: 'result',
          result: {
            kind: 'refused',
            error: `delivery refused: ${host} resolves to a non-public address`,
            address,
          },
        };
      }
    }
    return {
      kind: 'addresses',
      addresses: addresses.map(({ address }) => ({ address, family: isIP(address) })),
    };
  }

  private post(
    url: URL,
    host: string,
    addresses: ResolvedAddress[],
    request: DeliveryRequest,
    deadline: Deadline,
  ): Promise<SendResult> {
    const isHttps = url.protocol === 'https:';
    const body = Buffer.from(request.body, 'utf8');
    const headers: Record<string, string> = { ...request.headers };
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-length')) {
      headers['Content-Length'] = String(body.length);
    }
    // The socket layer asks this instead of DNS, so the connection can only go to an address vetted above.
    const lookup: LookupFunction = (_hostname, options, callback) => {
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    };
    const options: https.RequestOptions = {
      method: 'POST',
      protocol: url.protocol,
      hostname: host,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers,
      agent: isHttps ? this.httpsAgent : this.httpAgent,
      lookup,
      // SNI and certificate checks are for the name the customer registered, never for the address we dialled.
      // SNI carries no trailing dot (RFC 6066); certificate matching ignores it anyway.
      ...(isHttps && isIP(host) === 0 && { servername: host.replace(/\.$/, '') }),
    };

    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const settle = (result: SendResult) => {
        if (settled) return;
        settled = true;
        resolve(result);
      };

      // `fresh`: a connection of its own, outside the pool (so with the pool's TLS trust settings).
      const attempt = (fresh: boolean) => {
        const req = (isHttps ? https : http).request(
          fresh ? { ...options, ...(isHttps && this.tlsOptions), agent: false } : options,
        );
        let responded = false;
        deadline.onExpiry(() => {
          req.destroy();
          settle({ kind: 'timeout', error: deadline.message(`waiting for ${host}`) });
        });

        req.on('response', (res) => {
          responded = true;
          // The status decides the attempt: whatever the body does next, this is its result. The body has limits
          // of its own (see drain), so the attempt's budget ends here and cannot turn the answer into a timeout.
          deadline.clear();
          const retryAfterSeconds = parseRetryAfter(res.headers['retry-after'], this.now());
          const result: SendResult = {
            kind: 'response',
            status: res.statusCode ?? 0,
            ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
          };
          this.drain(res, () => settle(result));
        });

        // A 101 (Switching Protocols) is an answer like any other status, and one that is not 2xx. Node hands it
        // to 'upgrade' alone and, with no listener there, drops the connection without a 'response' or an 'error':
        // the attempt would wait out its whole budget and be retried as a timeout.
        req.on('upgrade', (res: http.IncomingMessage, socket: Duplex) => {
          responded = true;
          socket.destroy();
          settle({ kind: 'response', status: res.statusCode ?? 0 });
        });

        let superseded = false;
        req.on('error', (error: NodeJS.ErrnoException) => {
          // Once answered, an error only ends the body, which drain sees.
          if (settled || responded) return;
          const stale = req.reusedSocket && STALE_SOCKET_CODES.has(error.code ?? '');
          if (stale && !fresh && !deadline.expired) {
            superseded = true;
            attempt(true);
            return;
          }
          settle({ kind: 'network_error', error: networkErrorMessage(error, url.host) });
        });

        // Any other way a request can end without an answer or an error ends the attempt now, not at its deadline.
        req.on('close', () => {
          if (!superseded && !responded)
            settle({ kind: 'network_error', error: `connection to ${url.host} closed without a response` });
        });

        req.end(body);
      };

      attempt(false);
    });
  }

  /**
   * The addresses of `host`, from a lookup of its own or the one already in flight for it: a backlog of attempts to
   * one host whose name servers never answer asks them once, not once per attempt, and a lookup cut off at an
   * attempt's deadline goes on for the next attempt to use. Each attempt still resolves afresh once that lookup is
   * done.
   */
  private lookup(host: string): Promise<ResolvedAddress[]> {
    let pending = this.lookups.get(host);
    if (!pending) {
      pending = this.resolve(host);
      this.lookups.set(host, pending);
      const forget = () => {
        if (this.lookups.get(host) === pending) this.lookups.delete(host);
      };
      pending.then(forget, forget);
    }
    return pending;
  }

  /**
   * Reads and discards the body so the connection can be reused, dropping it instead past the size limit or when
   * the body takes longer than the drain timeout; calls `done` once the connection is back in the pool or gone.
   */
  private drain(res: http.IncomingMessage, done: () => void): void {
    const cutoff = setTimeout(() => res.destroy(), this.drainTimeoutMs);
    let received = 0;
    res.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > this.maxResponseBytes) res.destroy();
    });
    // A receiver that resets mid-body has already answered; the error only ends the drain.
    res.on('error', () => undefined);
    res.on('close', () => {
      clearTimeout(cutoff);
      done();
    });
  }
}

const TIMED_OUT = Symbol('timed out');

/** One timer for the whole attempt, shared by resolution, connection and the response. */
class Deadline {
  private readonly timer: NodeJS.Timeout;
  private handler: (() => void) | undefined;
  expired = false;

  constructor(private readonly timeoutMs: number) {
    this.timer = setTimeout(() => {
      this.expired = true;
      this.handler?.();
    }, timeoutMs);
  }

  race<T>(promise: Promise<T>): Promise<T | typeof TIMED_OUT> {
    if (this.expired) return Promise.resolve(TIMED_OUT);
    return new Promise<T | typeof TIMED_OUT>((resolve, reject) => {
      // Left in place after the race: the next stage replaces it, and resolving twice is a no-op.
      this.handler = () => resolve(TIMED_OUT);
      promise.then(resolve, reject);
    });
  }

  onExpiry(handler: () => void): void {
    if (this.expired) {
      handler();
      return;
    }
    this.handler = handler;
  }

  message(stage: string): string {
    return `delivery timed out after ${this.timeoutMs} ms ${stage}`;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.handler = undefined;
  }
}

/** An OpenSSL error string, `error:<hex code>:<library>:<function>:<reason>:…`; captures the reason. */
const OPENSSL_ERROR = /error:[0-9A-Fa-f]+:[^:\n]*:[^:\n]*:([^:\n]+)/;

/**
 * The message of a failed connection as the customer reads it in the delivery log: named by the URL's host, never
 * by the address dialled (`connect ECONNREFUSED 10.20.0.5:443`) nor by the names in the certificate found there,
 * since what a name resolves to on the worker's network, and what answers there, is not theirs to learn.
 */
function networkErrorMessage(error: NodeJS.ErrnoException, host: string): string {
  const code = error.code ?? 'connection failed';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `${code}: the receiver's certificate does not match ${host}`;
  // OpenSSL's own text (`write EPROTO 80FC…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:
  // ../deps/openssl/…/ssl3_record.c:350:` and a line break) says what went wrong only in its reason field.
  const openssl = typeof error.message === 'string' ? OPENSSL_ERROR.exec(error.message) : null;
  if (openssl) return `${code}: TLS with ${host} failed: ${openssl[1]}`;
  const dialled = (error as { address?: unknown }).address !== undefined || error instanceof AggregateError;
  return dialled ? `${code}: could not connect to ${host}` : errorMessage(error);
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

// Every HTTP-date form (IMF-fixdate, RFC 850, asctime) starts with a day name; anything else is not a date.
const HTTP_DATE_START = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*[, ]/;
// asctime (`Sun Nov  6 08:49:37 1994`) names no zone; an HTTP date is GMT, but Date.parse would read it as local time.
const ASCTIME = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * `Retry-After` as whole seconds from now: delay-seconds, or an HTTP date (past dates give 0); else undefined.
 * delay-seconds past what a number holds exactly are still a (very long) wait, not garbage: they give
 * `Number.MAX_SAFE_INTEGER`, which the retry schedule caps like any other long wait.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
  if (!HTTP_DATE_START.test(text)) return undefined;
  const at = Date.parse(ASCTIME.test(text) ? `${text} GMT` : text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * The delivery rules of the spec: 2xx succeeds; 408, 425, 429, 5xx, timeouts and connection errors are worth
 * another attempt; any other status (3xx included, since redirects are not followed) fails for good, and so does
 * a refused (SSRF) delivery, because the next attempt would resolve to the same forbidden place.
 */
export function classifyOutcome(result: SendResult): DeliveryOutcome {
  switch (result.kind) {
    case 'response':
      return classifyStatus(result.status);
    case 'timeout':
    case 'network_error':
      return 'retry';
    case 'refused':
      return 'failed';
  }
}

function classifyStatus(status: number): DeliveryOutcome {
  if (status >= 200 && status <= 299) return 'succeeded';
  if (status === 408 || status === 425 || status === 429 || (status >= 500 && status <= 599)) return 'retry';
  return 'failed';
}
