import { Global, Module } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import pino, { type DestinationStream } from 'pino';
import { APP_CONFIG, ConfigModule } from './config.module';
import type { AppConfig } from './config.schema';

/** Injection token of the stream the logs go to: stdout, or a capturing stream in tests. */
export const LOG_DESTINATION = Symbol('LOG_DESTINATION');

/**
 * Paths pino blanks out wherever they appear. Headers carrying credentials or signatures, and any field named
 * like a secret or an API key, one and two levels deep (pino redaction has no recursive wildcard; our log
 * calls never nest secrets deeper, and none of them passes a secret on purpose: this is the safety net).
 */
export const REDACTED_LOG_PATHS = [
  'req.headers["anchor-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["anchor-signature"]',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  'headers["anchor-api-key"]',
  'headers.authorization',
  'headers["anchor-signature"]',
  'secret',
  'api_key',
  'apiKey',
  '*.secret',
  '*.api_key',
  '*.apiKey',
  '*.*.secret',
  '*.*.api_key',
];

/**
 * Stdout, asynchronous: while one write is in flight the next lines queue up and go out together, so under
 * load there is far less than one write system call per line (a measurable share of a request's cost), and
 * an idle process still logs at once. Flushed synchronously when the process exits.
 */
function stdoutDestination(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false });
  process.once('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // Nothing left to do when stdout itself is gone.
    }
  });
  return dest;
}

/** The request's route template, set by the API's routing hook (falls back to the path without query). */
export const ROUTE_OF_REQUEST = Symbol('route');

const routeOf = (req: IncomingMessage): string =>
  (req as IncomingMessage & { [ROUTE_OF_REQUEST]?: string })[ROUTE_OF_REQUEST] ??
  (req.url ?? '').split('?')[0];

/**
 * Structured JSON logs (pino) for the API and the worker, Nest's own messages included. One line per HTTP
 * request with its id (the Fastify request id, echoed as `x-request-id`), route template, status and latency.
 */
@Global()
@Module({
  imports: [
    LoggerModule.forRootAsync({
      imports: [ConfigModule],
      providers: [{ provide: LOG_DESTINATION, useFactory: stdoutDestination }],
      inject: [APP_CONFIG, LOG_DESTINATION],
      useFactory: (config: AppConfig, destination: DestinationStream) => ({
        pinoHttp: [
          {
            level: config.log.level,
            redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
            // The request id is Fastify's (x-request-id or a new UUID), exposed on the raw request by middie.
            genReqId: (req: IncomingMessage) => (req as IncomingMessage & { id?: string }).id ?? '',
            customProps: (req: IncomingMessage) => ({ route: routeOf(req) }),
            // Probes and scrapes every few seconds would drown the useful lines.
            autoLogging: { ignore: (req: IncomingMessage) => /^\/(health|metrics)/.test(req.url ?? '') },
            customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) =>
              err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
            serializers: {
              req: (req: { id: unknown; method: string; url: string; headers: Record<string, unknown> }) => ({
                id: req.id,
                method: req.method,
                url: req.url,
                headers: req.headers,
              }),
              res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
            },
          },
          destination,
        ],
      }),
    }),
  ],
})
export class LoggingModule {}
