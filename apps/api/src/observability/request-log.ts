import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ConnectionAnswer } from '../http/client-errors';
import { PinoLogger } from 'nestjs-pino';
import type { Logger } from 'pino';
import {
  CREDENTIAL_CENSOR as CENSOR,
  CREDENTIAL_HEADERS,
  blankCredentialLike,
  blankCredentialLikeInUrlPart,
  blankCredentialLikeInUrlPath,
} from '@app/config';

// Probes and scrapes every few seconds would drown the useful lines.
const QUIET_ROUTES = /^\/(health|metrics)(\/|$)/;

const CREDENTIALS = new Set(CREDENTIAL_HEADERS);

let child: { root: Logger; logger: Logger } | null = null;

/**
 * The application's pino logger (level, serializers, destination) without its path redaction: the request
 * line blanks its credential headers itself ({@link loggableHeaders}), and pino's redaction, which clones what
 * it redacts, cost more per request than the rest of the line.
 */
function requestLogger(): Logger | undefined {
  const root = PinoLogger.root as Logger | undefined;
  if (!root) return undefined;
  if (child?.root !== root) child = { root, logger: root.child({}, { redact: [] }) };
  return child.logger;
}

/**
 * The request headers with every credential or signature header (CREDENTIAL_HEADERS) blanked, and anything
 * shaped like an API key or a secret blanked in every other header too: a client that sends its key under
 * another name (`x-api-key`, a misspelt `anchor_api_key`) must not get it into the logs either.
 */
export function loggableHeaders(headers: FastifyRequest['headers']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name in headers) {
    const value = headers[name];
    out[name] = CREDENTIALS.has(name) ? CENSOR : blankHeader(value);
  }
  return out;
}

function blankHeader(value: string | string[] | undefined): string | string[] | undefined {
  if (typeof value === 'string') return blankCredentialLike(value);
  if (Array.isArray(value)) return value.map(blankCredentialLike);
  return value;
}

/** Query parameters of the API's own routes: their values are logged; any other parameter's value is blanked. */
const LOGGABLE_QUERY = new Set([
  'limit',
  'offset',
  'status',
  'event_type',
  'since',
  'until',
  'include_payload',
  'webhook_id',
  'type',
  'cursor',
]);

/**
 * A request URL as it may be logged: a client that puts its API key or a secret in the URL (`?api_key=…`, or by
 * mistake in the path) must not get it into the logs. The values of query parameters the API does not read are
 * blanked, and anything shaped like a key or a secret is blanked wherever it appears.
 */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const path = blankCredentialLikeInUrlPath(rawPath);
  if (q < 0) return path;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return blankCredentialLikeInUrlPart(pair);
      const name = blankCredentialLikeInUrlPart(pair.slice(0, eq));
      if (!LOGGABLE_QUERY.has(pair.slice(0, eq))) return `${name}=${CENSOR}`;
      return `${name}=${blankCredentialLikeInUrlPart(pair.slice(eq + 1))}`;
    })
    .join('&');
  return `${path}?${query}`;
}

/**
 * Logs one JSON line per finished request through the application's pino logger (so with its level,
 * serializers and redaction): request id, method, url and headers (both redacted), route template, status and
 * latency in ms. 4xx at warn, 5xx at error. Called from a Fastify onResponse hook, which costs far less
 * per request than an HTTP logging middleware.
 */
export function logRequest(req: FastifyRequest, reply: FastifyReply, route: string): void {
  const root = requestLogger();
  if (!root || QUIET_ROUTES.test(route)) return;
  const status = reply.statusCode;
  const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
  if (!root.isLevelEnabled(level)) return;
  root[level](
    {
      req: {
        id: req.id,
        method: req.method,
        url: loggableUrl(req.url),
        headers: loggableHeaders(req.headers),
      },
      route,
      // The raw response: pino-http's serializer reads its status once the headers are sent.
      res: reply.raw,
      responseTime: Math.round(reply.elapsedTime * 100) / 100,
    },
    'request completed',
  );
}

/** The route label, in the log and the metrics, of answers the HTTP server gives before any route is matched. */
export const CONNECTION_ROUTE = '(connection)';

/**
 * Logs one line, at warn, for an answer the HTTP server gave by itself (a request that is not valid HTTP, not
 * received in time, with headers over the limit, an unmet `Expect`, CONNECT): the request id, method and url (when
 * the request's head was read) as on a request line, the route `(connection)`, the status and the error code. No
 * request hook sees these requests, so without it they would leave no trace.
 */
export function logConnectionAnswer(answer: ConnectionAnswer): void {
  const root = requestLogger();
  if (!root?.isLevelEnabled('warn')) return;
  root.warn(
    {
      req: {
        id: answer.requestId,
        ...(answer.method !== undefined && { method: answer.method }),
        ...(answer.url !== undefined && { url: loggableUrl(answer.url) }),
      },
      route: CONNECTION_ROUTE,
      status: answer.status,
      code: answer.code,
    },
    'request answered by the HTTP server',
  );
}
