import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ArgumentsHost } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { STATUS_BY_CODE, formErrorBody, type ErrorBody } from '../http/error-response';
import { HttpErrorFilter } from '../http/http-error.filter';

/** Where the dashboard is served. */
export const QUEUE_BOARD_PATH = '/admin/queues';

// Compared as SHA-256 digests, which always have the same length: comparing the tokens themselves would answer a
// token of another length at once, telling a caller how long ADMIN_TOKEN is.
const digest = (token: string): Buffer => createHash('sha256').update(token).digest();
const sameToken = (given: string, expected: string): boolean =>
  timingSafeEqual(digest(given), digest(expected));

/** `Authorization: Bearer <token>`, or basic auth with the token as password (any user): what browsers can do. */
export function adminAuthorized(header: string | undefined, token: string): boolean {
  // The scheme, then its credentials after one or more spaces or tabs (RFC 9110 allows more than one space).
  const parts = header === undefined ? null : /^[ \t]*(\S+)[ \t]+(.*)$/s.exec(header);
  if (!parts) return false;
  const [, scheme, value] = parts;
  if (/^bearer$/i.test(scheme)) return sameToken(value.trim(), token);
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
    return sameToken(decoded.slice(decoded.indexOf(':') + 1), token);
  }
  return false;
}

/**
 * Whether a request to the dashboard is one a page of another site could have a browser send, credentials
 * included: a POST whose body is not declared JSON (a form, or a fetch without a content type) needs no CORS
 * preflight, and a browser adds the basic-auth credentials it holds for the dashboard to it. Every body is
 * parsed as JSON whatever its content type, so such a POST would reach Bull Board's "add job". The dashboard
 * itself posts `application/json`, which another site cannot send without a preflight (that nothing answers);
 * its other changes use PUT and PATCH, which always need one.
 */
function crossSiteSendable(method: string, contentType: string | undefined): boolean {
  if (method !== 'POST') return false;
  const mediaType = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return mediaType !== 'application/json';
}

const errorFilter = new HttpErrorFilter();

/**
 * The one error body for a refusal Bull Board answered itself: an unknown queue or job is 404 `not_found`, any
 * other refusal 400 `validation_failed`. A body that is already the service's (from the error filter) is left.
 */
function ownErrorBody(payload: unknown, reply: FastifyReply, requestId: string): unknown {
  if (typeof payload !== 'object' || payload === null || 'code' in payload) return payload;
  const message =
    'error' in payload && typeof payload.error === 'string'
      ? payload.error
      : 'the dashboard refused the request';
  if (reply.statusCode === STATUS_BY_CODE.not_found) {
    return { error: message, code: 'not_found', request_id: requestId } satisfies ErrorBody;
  }
  void reply.code(STATUS_BY_CODE.validation_failed);
  return {
    error: message,
    code: 'validation_failed',
    details: [{ field: 'request', rule: 'dashboard', message }],
    request_id: requestId,
  } satisfies ErrorBody;
}

/**
 * The service's one error filter for a route of the dashboard: Bull Board's own error handler answers every error
 * 500 `{"error":"Internal server error"}`, a body that is not JSON or too large included.
 */
function dashboardErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const http = { getRequest: () => request, getResponse: () => reply, getNext: () => undefined };
  errorFilter.catch(error, { switchToHttp: () => http } as unknown as ArgumentsHost);
}

/**
 * Bull Board over every queue at {@link QUEUE_BOARD_PATH}, behind ADMIN_TOKEN. Registered only when a token is
 * configured: without one the path does not exist (404), so an unconfigured deployment exposes nothing.
 * `redisReady` rejects ("Redis is unavailable", a 503) unless the queue handles' connection is up, waiting a moment
 * for it: BullMQ waits for a connection that has never been ready for as long as it takes, so while Redis is away
 * the dashboard's API answers 503 rather than never.
 */
export function registerQueueBoard(
  fastify: FastifyInstance,
  queues: () => Promise<Queue[]>,
  token: string,
  redisReady: () => Promise<void>,
): void {
  void fastify.register(async (scope) => {
    // Loaded only when the dashboard is on: Bull Board and BullMQ cost tens of MB the API otherwise saves.
    const [{ createBullBoard }, { BullMQAdapter }, { FastifyAdapter }] = await Promise.all([
      import('@bull-board/api'),
      import('@bull-board/api/bullMQAdapter'),
      import('@bull-board/fastify'),
    ]);
    const serverAdapter = new FastifyAdapter();
    createBullBoard({ queues: (await queues()).map((q) => new BullMQAdapter(q)), serverAdapter });
    serverAdapter.setBasePath(QUEUE_BOARD_PATH);
    // A route's own error handler comes before the one Bull Board sets for its routes.
    scope.addHook('onRoute', (route) => {
      route.errorHandler = dashboardErrorHandler;
    });
    // Bull Board answers its own refusals (an unknown queue or job, a state that cannot be retried) with a body of
    // its own, `{"error": "..."}`: they get the service's one error body too.
    scope.addHook('preSerialization', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) =>
      reply.statusCode >= 400 ? ownErrorBody(payload, reply, String(req.id)) : payload,
    );
    scope.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      // A page of another site framing the dashboard, with the browser's credentials, could have an admin click
      // its buttons (retry, clean, pause) unawares.
      void reply
        .header('x-frame-options', 'DENY')
        .header('content-security-policy', "frame-ancestors 'none'");
      if (!adminAuthorized(req.headers.authorization, token)) {
        await reply
          .code(STATUS_BY_CODE.unauthorized)
          .header('www-authenticate', 'Basic realm="queues"')
          .send({
            error: 'a valid ADMIN_TOKEN is required',
            code: 'unauthorized',
            request_id: String(req.id),
          });
        return;
      }
      if (crossSiteSendable(req.method, req.headers['content-type'])) {
        await reply
          .code(STATUS_BY_CODE.validation_failed)
          .send(
            formErrorBody(
              'request',
              'the dashboard takes only JSON bodies (application/json)',
              String(req.id),
            ),
          );
        return;
      }
      // The page and its assets need no Redis; the dashboard's API reads and changes the queues.
      if (req.url.startsWith(`${QUEUE_BOARD_PATH}/api/`)) await redisReady();
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
  });
}
