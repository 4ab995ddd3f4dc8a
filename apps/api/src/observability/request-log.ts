import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';

// Probes and scrapes every few seconds would drown the useful lines.
const QUIET_ROUTES = /^\/(health|metrics)(\/|$)/;

/**
 * Logs one JSON line per finished request through the application's pino logger (so with its level,
 * serializers and redaction): request id, method, url, headers (redacted), route template, status and
 * latency in ms. 4xx at warn, 5xx at error. Called from a Fastify onResponse hook, which costs far less
 * per request than an HTTP logging middleware.
 */
export function logRequest(req: FastifyRequest, reply: FastifyReply, route: string): void {
  const root = PinoLogger.root;
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
