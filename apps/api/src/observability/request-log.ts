import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import type { Logger } from 'pino';
import { REQUEST_LOG_REDACTED_PATHS } from '@app/config';

// Probes and scrapes every few seconds would drown the useful lines.
const QUIET_ROUTES = /^\/(health|metrics)(\/|$)/;

let child: { root: Logger; logger: Logger } | null = null;

/**
 * The application's pino logger (level, serializers, destination) redacting the request line's credential
 * headers by their exact paths instead of the root's wildcard safety net (see REQUEST_LOG_REDACTED_PATHS).
 */
function requestLogger(): Logger | undefined {
  const root = PinoLogger.root as Logger | undefined;
  if (!root) return undefined;
  if (child?.root !== root) {
    child = {
      root,
      logger: root.child({}, { redact: { paths: REQUEST_LOG_REDACTED_PATHS, censor: '[redacted]' } }),
    };
  }
  return child.logger;
}

/**
 * Logs one JSON line per finished request through the application's pino logger (so with its level,
 * serializers and redaction): request id, method, url, headers (redacted), route template, status and
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
      req: { id: req.id, method: req.method, url: req.url, headers: req.headers },
      route,
      // The raw response: pino-http's serializer reads its status once the headers are sent.
      res: reply.raw,
      responseTime: Math.round(reply.elapsedTime * 100) / 100,
    },
    'request completed',
  );
}
