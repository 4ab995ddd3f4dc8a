import { ServiceUnavailableException } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { errorCodes, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { Logger as PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '@app/config';
import { parseCidrList, setDefaultUrlPolicy } from '@app/validation';
import { ApiKeyGuard } from './auth/api-key.guard';
import { ApiValidationPipe } from './http/api-validation.pipe';
import { answerClientError, watchConnections } from './http/client-errors';
import { STATUS_BY_CODE, formErrorBody } from './http/error-response';
import { HttpErrorFilter } from './http/http-error.filter';
import { BODY_LIMIT_BYTES, registerJsonBodyParser } from './http/json-body.parser';
import { requestIdFor } from './http/request-id';
import { missingHostError, unknownQueryParametersError } from './http/request-refusals';
import { IdempotencyService } from './idempotency/idempotency.service';
import { MetricsService } from './observability/metrics.service';
import { MonitoredQueuesProvider } from './observability/monitored-queues.provider';
import { setupOpenApi } from './observability/openapi';
import { registerQueueBoard } from './observability/queue-board';
import { logConnectionAnswer, logRequest } from './observability/request-log';

/**
 * Fastify options of the API: body limit, request ids from `x-request-id`, proxies trusted for client IPs, and
 * `requestTimeoutMs` for receiving a whole request (headers and body).
 */
export function apiAdapter(http: Pick<AppConfig['http'], 'requestTimeoutMs'>): FastifyAdapter {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    // A request not received completely in time (a stalled or trickling body, slow headers) is answered 408 and
    // its connection closed (see answerClientError); Fastify's default, 0, would let a body hold the connection
    // for ever. Node's headersTimeout must not exceed it (Node would then swap the two, and give the body the
    // headers' 60 s), and Node looks for late requests every connectionsCheckingInterval: a tenth of the timeout.
    requestTimeout: http.requestTimeoutMs,
    http: {
      requestTimeout: http.requestTimeoutMs,
      headersTimeout: Math.min(60_000, http.requestTimeoutMs),
      connectionsCheckingInterval: requestCheckInterval(http.requestTimeoutMs),
      // Node would answer an HTTP/1.1 request without Host itself, with a bare 400 and no request id: it is
      // refused in the first hook instead (see configureApiApp).
      requireHostHeader: false,
    },
    genReqId: requestIdFor,
    trustProxy: true,
    // A long id is just an unknown webhook (404), not a 414: Node's 16 KiB header limit bounds the path first.
    routerOptions: { maxParamLength: 16 * 1024 },
    frameworkErrors: answerRouterError,
    clientErrorHandler: answerClientError,
    // Keep-alive sockets of a stopping replica are closed once their in-flight request is answered.
    forceCloseConnections: 'idle',
    // A request that still arrives while the replica stops is refused in the first hook (see configureApiApp),
    // with the error body, request id and Retry-After of every 503, rather than Fastify's own bare body.
    return503OnClosing: false,
  });
  // For a method no route has (TRACE, PROPFIND…) the router leaves the path to the not-found router, which calls
  // the not-found handler straight away, without any hook, when the path is not valid percent-encoding: such a
  // request is answered like that path under any other method, key check first (see answerRouterError).
  const setNotFoundHandler = adapter.setNotFoundHandler.bind(adapter);
  adapter.setNotFoundHandler = (handler: (req: FastifyRequest, reply: FastifyReply) => unknown) =>
    setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) =>
      decodes(req.url) ? handler(req, reply) : answerRouterError(new BadUrl(req.url), req, reply),
    );
  return adapter;
}

/** How often Node looks for requests past their timeout: a tenth of it (at least 50 ms), at most every 30 s. */
function requestCheckInterval(requestTimeoutMs: number): number {
  return Math.min(30_000, Math.max(50, Math.floor(requestTimeoutMs / 10)));
}

const BodyTooLarge = errorCodes.FST_ERR_CTP_BODY_TOO_LARGE;
const BadUrl = errorCodes.FST_ERR_BAD_URL;

/** The key check of each API, by its Fastify instance, for the answers the router gives before any hook runs. */
const routerKeyChecks = new WeakMap<object, ApiKeyGuard>();

/** What the onResponse hook does with an answer (its log line and metrics), for those no hook sees. */
const routerAnswerObservers = new WeakMap<object, (req: FastifyRequest, reply: FastifyReply) => void>();

/**
 * Errors the router raises before any hook or route runs (a path that is not valid percent-encoding): answered
 * in the documented error body, with the request id, like every other error. On a `/v1` path the key still comes
 * first, as everywhere under `/v1`: without a valid one the answer is its 401 (or 429), not the path's 400.
 */
function answerRouterError(error: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const message =
    error.code === 'FST_ERR_BAD_URL' ? 'the request path is not valid percent-encoding' : error.message;
  // No hook runs for these answers: the header the onSend hook gives every other one, and the log line and
  // metrics of the onResponse hook.
  void reply.header('x-content-type-options', 'nosniff');
  const observe = routerAnswerObservers.get(req.server);
  if (observe !== undefined) reply.raw.once('finish', () => observe(req, reply));
  const refuse = () =>
    void reply
      .code(STATUS_BY_CODE.validation_failed)
      .header('x-request-id', req.id)
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(formErrorBody('path', message, req.id)));
  const apiKeys = routerKeyChecks.get(req.server);
  if (apiKeys === undefined || !isV1Path(decodedPath(req.url))) return refuse();
  // Like every other /v1 answer (the onRequest hook that sets it does not run for these either).
  void reply.header('cache-control', 'no-store');
  apiKeys
    .admit(req, reply)
    .then(refuse, (e: unknown) => new HttpErrorFilter().catch(e, new ExecutionContextHost([req, reply])));
}

/** Options for creating the API application: our own body parser instead of Nest's. */
export const API_APP_OPTIONS = {
  bufferLogs: true,
  abortOnError: false,
  // Our own parser handles every body (see registerJsonBodyParser); Nest's would accept form bodies.
  bodyParser: false,
} as const;

/** Whether a path (a route template, or a request's decoded path) is under `/v1`. */
const isV1Path = (path: string): boolean => path === '/v1' || path.startsWith('/v1/');

/**
 * A request's path as the router matches it: without the query, percent-decoded (so `/%761/…` is `/v1/…`), or as
 * sent when it does not decode.
 */
function decodedPath(url: string): string {
  const path = url.split('?')[0];
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Whether a request's path (without the query) is valid percent-encoding. */
function decodes(url: string): boolean {
  try {
    decodeURIComponent(url.split('?')[0]);
    return true;
  } catch {
    return false;
  }
}

/** Wires the HTTP conventions onto a created API application; shared by `main` and the end-to-end tests. */
export function configureApiApp(app: NestFastifyApplication, config: AppConfig): NestFastifyApplication {
  setDefaultUrlPolicy({ allowCidrs: parseCidrList(config.targets.allowCidrs.join(',')) });
  app.useLogger(app.get(PinoLogger));
  const fastify = app.getHttpAdapter().getInstance();
  const metrics = app.get(MetricsService);
  watchConnections(app.getHttpServer(), (answer) => {
    metrics.countConnectionAnswer(answer.method, answer.status);
    logConnectionAnswer(answer);
  });
  registerJsonBodyParser(fastify);
  // Set when the server starts closing (preClose, below): a request that still arrives on an open connection is
  // answered 503, its connection closed, while those in flight finish.
  let closing = false;
  fastify.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    if (closing) {
      void reply.header('connection', 'close');
      return done(new ServiceUnavailableException('the service is stopping; retry on a new connection'));
    }
    // RFC 9112: an HTTP/1.1 request without Host is a 400 (Node's own check is off, see apiAdapter); first of all,
    // like every refusal of a request's form. HTTP/1.0 may omit it.
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') {
      void reply.header('connection', 'close');
      return done(missingHostError());
    }
    // Every body is parsed as JSON whatever its content type, and so is one under a Content-Type that is not a
    // media type at all (`json`, `/`, empty): it is read as none, which Fastify would otherwise refuse with 415
    // before any parser. (An unparsable value is cached as type and subtype both empty: `/`.)
    if (req.headers['content-type'] !== undefined && req.mediaType === '/')
      delete req.headers['content-type'];
    // Nothing here is served in parts: a Range is ignored (RFC 9110 allows it), so the documentation's static
    // files answer 200 whole rather than a 500 for a range they cannot satisfy.
    delete req.headers.range;
    done();
  });
  // Every /v1 path needs a key, checked first, before the body is read: 401 (or 429) whatever the body, its size
  // included, however it is framed, and an unknown /v1 path is a 404 only for an authenticated caller.
  const apiKeys = app.get(ApiKeyGuard);
  routerKeyChecks.set(fastify, apiKeys);
  fastify.addHook('onRequest', async (req, reply) => {
    if (!isV1Path(req.routeOptions.url ?? decodedPath(req.url))) return;
    // A project's webhooks and its one-time secrets must not be kept by a cache on the way: the key is in a header
    // of our own, which caches do not know as credentials (as they know Authorization), nor vary on.
    void reply.header('cache-control', 'no-store');
    await apiKeys.admit(req, reply);
  });
  fastify.addHook('onRequest', (req, _reply, done) => {
    // Every route, also those whose body is never read (GET): a declared body over the limit is a 413.
    if (Number(req.headers['content-length']) > BODY_LIMIT_BYTES) return done(new BodyTooLarge());
    // No route that changes anything reads a query string, and one ignored without a word would mislead: a
    // `rotate-secret?grace_period_hours=1` would rotate with the default grace period. So a change with one is
    // refused, each parameter named, like an unknown field of a body (after the key check: 401 comes first).
    // The reads ignore what they do not know (the two logs validate theirs), as nothing depends on it there.
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.routeOptions.url !== undefined) {
      const names = Object.keys(req.query as object);
      if (names.length > 0 && isV1Path(req.routeOptions.url)) return done(unknownQueryParametersError(names));
    }
    done();
  });
  const observeAnswer = (req: FastifyRequest, reply: FastifyReply): void => {
    // The log line and the metrics name the route template, never the raw path (ids would explode both).
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    logRequest(req, reply, route);
  };
  routerAnswerObservers.set(fastify, observeAnswer);
  fastify.addHook('onResponse', (req, reply, done) => {
    observeAnswer(req, reply);
    done();
  });
  // While stopping, answers that were in flight close their keep-alive connection, so that the server's
  // close does not wait for clients to hang up (the load balancer retries on another replica).
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    reply.removeHeader('accept-ranges');
    // Every answer is taken for the type it declares (JSON, the metrics' text, the documentation's pages), never
    // sniffed by a browser as HTML or script from a body that echoes what a caller sent (a field name, a path).
    void reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });
  // The last part of Idempotency-Key (the routes' guard claims the key, the use case stores the response with its
  // change): the key of a request that failed is given back, and the response of a route whose use case stored
  // nothing is stored here. Awaited, so a replay never misses it.
  const idempotency = app.get(IdempotencyService);
  fastify.addHook('onSend', (req, reply, payload, done) => {
    if (!idempotency.holdsClaim(req)) return done(null, payload);
    void idempotency
      .finish(req, reply.statusCode, typeof payload === 'string' ? payload : null)
      .catch(() => undefined) // finish logs its own failures; the response goes out regardless
      .then(() => done(null, payload));
  });
  app.useGlobalFilters(new HttpErrorFilter());
  app.useGlobalPipes(new ApiValidationPipe());
  setupOpenApi(app);
  if (config.admin.token) {
    const monitored = app.get(MonitoredQueuesProvider);
    registerQueueBoard(
      fastify,
      () => monitored.queues(),
      config.admin.token,
      () => monitored.dashboardReady(),
    );
  }
  return app;
}
