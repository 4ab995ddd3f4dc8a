import { Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import pino, { type DestinationStream } from 'pino';
import { APP_CONFIG, ConfigModule } from './config.module';
import type { AppConfig } from './config.schema';

/** Injection token of the stream the logs go to: stdout, or a capturing stream in tests. */
export const LOG_DESTINATION = Symbol('LOG_DESTINATION');

/**
 * Request headers that carry credentials or signatures: never logged. The API's one line per request blanks
 * them itself (see the API's request log), since that line has a fixed shape in which nothing else can hold a
 * secret; every other line goes through the paths below, wildcard safety net included.
 */
export const CREDENTIAL_HEADERS = [
  'anchor-api-key',
  'authorization',
  'proxy-authorization',
  'cookie',
  'anchor-signature',
  'idempotency-key',
];

const REQUEST_LOG_REDACTED_PATHS = [
  ...CREDENTIAL_HEADERS.map((h) => `req.headers[${JSON.stringify(h)}]`),
  'res.headers["set-cookie"]',
];

/**
 * Paths pino blanks out wherever they appear. Headers carrying credentials or signatures, and any field named
 * like a secret or an API key, one and two levels deep (pino redaction has no recursive wildcard; our log
 * calls never nest secrets deeper, and none of them passes a secret on purpose: this is the safety net).
 */
export const REDACTED_LOG_PATHS: string[] = [
  ...REQUEST_LOG_REDACTED_PATHS,
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
  '*.*.apiKey',
  // The values a failed query was sent with (TypeORM's QueryFailedError keeps them): a secret's ciphertext, a
  // sealed stored response, a receiver URL with a token in it. The query itself stays, for the diagnosis.
  'err.parameters',
  'error.parameters',
  // Postgres's detail of a failed constraint quotes the row's values ("Key (url)=(https://…?token=…) already
  // exists"); QueryFailedError copies it onto itself and keeps it on its driverError.
  'err.detail',
  'error.detail',
  'err.driverError.detail',
  'error.driverError.detail',
];

/** pino's redaction of every logger of the processes: the paths above, blanked out. */
export const LOG_REDACTION = { paths: REDACTED_LOG_PATHS, censor: '[redacted]' };

/** The process's one stdout destination, shared by every application it runs (the tests run many). */
let stdout: ReturnType<typeof pino.destination> | undefined;

/**
 * Stdout, asynchronous: while one write is in flight the next lines queue up and go out together, so under
 * load there is far less than one write system call per line (a measurable share of a request's cost), and
 * an idle process still logs at once. Flushed synchronously when the process exits. One per process: the lines
 * of every application in it go out in order through one buffer, flushed by one exit hook.
 */
function stdoutDestination(): DestinationStream {
  if (stdout) return stdout;
  const dest = pino.destination({ dest: 1, sync: false });
  process.once('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // Nothing left to do when stdout itself is gone.
    }
  });
  stdout = dest;
  return dest;
}

/**
 * Structured JSON logs (pino) for the API and the worker, Nest's own messages included, redacted by
 * {@link REDACTED_LOG_PATHS}. The `req` and `res` serializers give the shape of the API's one line per
 * request: id (the Fastify request id, echoed as `x-request-id`), method, url, headers, status.
 */
@Global()
@Module({
  imports: [
    LoggerModule.forRootAsync({
      imports: [ConfigModule],
      providers: [{ provide: LOG_DESTINATION, useFactory: stdoutDestination }],
      inject: [APP_CONFIG, LOG_DESTINATION],
      useFactory: (config: AppConfig, destination: DestinationStream) => ({
        // No per-request middleware: pino-http's binds a child logger through AsyncLocalStorage on every
        // request, which costs a third of the API's throughput. The API logs one line per request from a
        // Fastify hook instead (see the API's request log); Nest's own messages still go through pino.
        forRoutes: [],
        pinoHttp: [
          {
            level: config.log.level,
            redact: LOG_REDACTION,
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
