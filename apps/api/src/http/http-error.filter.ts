import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type ErrorCode } from '@app/domain';
import { IdempotentReplay } from '../idempotency/idempotency.service';
import { isDependencyUnavailable } from './dependency-errors';
import { STATUS_BY_CODE, formErrorBody, type ErrorBody } from './error-response';
import { loggableUrl } from '../observability/request-log';

/** Most entries an error body's `details` lists; the sentence says how many problems there were in all. */
export const MAX_DETAILS = 20;

// Errors that Fastify raises before a handler runs (body parsing, limits), by their code.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
};

/**
 * Whether `exception` is a client error that a Fastify plugin raised as an `http-errors` object (the static files
 * of the documentation: a failed `If-Match` or `If-Unmodified-Since`), with a 4xx status and a message meant for
 * the client.
 */
function isClientHttpError(exception: unknown): exception is Error & { status: number } {
  if (!(exception instanceof Error)) return false;
  const { status, expose } = exception as { status?: unknown; expose?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}

/**
 * Whether `exception` is the request's own stream failing because its connection closed before the request was
 * received whole (the client hung up mid-body, or its request timed out): Node fails the stream with `aborted`,
 * code ECONNRESET, the code of a reset Postgres connection too, so it is told apart by the stream, first.
 */
function isCutOff(exception: unknown, req: FastifyRequest): boolean {
  return req.raw.readableAborted && (exception as { code?: unknown } | null)?.code === 'ECONNRESET';
}

/**
 * The one exception filter: maps every error to the documented error body and status. Domain errors carry
 * their code; unreachable dependencies become 503; anything unexpected is a 500 that is logged with the
 * request id and never shows a stack trace, SQL or secret to the caller.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpErrorFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    const requestId = String(req.id);
    if (exception instanceof IdempotentReplay) {
      // Not an error: the first response of this Idempotency-Key, again.
      void reply
        .status(exception.status)
        .headers({
          'x-request-id': requestId,
          'idempotent-replayed': 'true',
          'content-type': 'application/json; charset=utf-8',
        })
        .send(exception.body);
      return;
    }
    if (isCutOff(exception, req)) {
      // No answer can reach the client, and no dependency failed: neither a 503 nor a warning.
      this.logger.log(
        { request_id: requestId, route: loggableUrl(req.url) },
        'connection closed before the request was received',
      );
      void reply
        .status(STATUS_BY_CODE.invalid_json)
        .headers({ 'x-request-id': requestId })
        .send({
          error: 'the connection closed before the request body was received',
          code: 'invalid_json',
          request_id: requestId,
        } satisfies ErrorBody);
      return;
    }
    const { status, body, headers } = this.toResponse(exception, requestId, req);
    if (status >= 500 && body.code === 'internal_error') {
      this.logger.error(
        { err: exception, request_id: requestId, route: loggableUrl(req.url) },
        'unhandled error',
      );
    }
    void reply
      .status(status)
      .headers({ 'x-request-id': requestId, ...headers })
      .send(body);
  }

  private toResponse(
    exception: unknown,
    requestId: string,
    req: FastifyRequest,
  ): { status: number; body: ErrorBody & Record<string, unknown>; headers: Record<string, string> } {
    const make = (code: ErrorCode, error: string, extra: Partial<ErrorBody> = {}) => ({
      status: STATUS_BY_CODE[code],
      body: { error, code, ...extra, request_id: requestId },
      headers: {} as Record<string, string>,
    });
    // A refusal of the request's form, with its detail.
    const formRefusal = (message: string) =>
      make('validation_failed', message, { details: formErrorBody('request', message, requestId).details });

    if (exception instanceof DomainError) {
      const { details } = exception;
      // However many rules a request breaks (thousands of unknown fields), the answer lists the first few.
      const listed = details && details.length > MAX_DETAILS ? details.slice(0, MAX_DETAILS) : details;
      const res = make(
        exception.code,
        listed === details
          ? exception.message
          : `${exception.message} (${details!.length} problems, the first ${MAX_DETAILS} listed in details)`,
        listed ? { details: listed } : {},
      );
      if (exception.retryAfterSeconds !== undefined)
        res.headers['retry-after'] = String(exception.retryAfterSeconds);
      return res;
    }
    if (isDependencyUnavailable(exception)) {
      const res = make('service_unavailable', 'a dependency of the service is unavailable; retry shortly');
      res.headers['retry-after'] = '5';
      this.logger.warn(
        { request_id: requestId, reason: (exception as Error).message },
        'dependency unavailable',
      );
      return res;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      if (status === 503 && typeof response === 'object' && response !== null && 'status' in response) {
        // Readiness check (terminus): keep its per-dependency report next to the standard fields.
        const res = make('service_unavailable', 'service is not ready');
        Object.assign(res.body, { checks: response });
        res.headers['retry-after'] = '5';
        return res;
      }
      // 403: a file path that climbs out of the documentation's directory (`/docs/..`); there is nothing there.
      if (status === 404 || status === 403)
        return make('not_found', `no route ${req.method} ${req.url.split('?')[0]}`);
      if (status === 413) return make('payload_too_large', 'request body must be at most 64 KiB');
      if (status === 429) return make('rate_limited', 'too many requests; retry later');
      if (status === 401) return make('unauthorized', 'a valid anchor-api-key header is required');
      if (status === 503)
        return { ...make('service_unavailable', exception.message), headers: { 'retry-after': '5' } };
      // What else Fastify refuses before any route runs is the request's form (a QUERY without Content-Type or
      // body): 400 with its detail, like every other refusal of a request's form, never a bare 4xx.
      if (status >= 400 && status < 500) return formRefusal(exception.message);
    }
    const fastifyCode = (exception as { code?: unknown } | null)?.code;
    if (typeof fastifyCode === 'string' && fastifyCode in FASTIFY_CODES) {
      const code = FASTIFY_CODES[fastifyCode];
      return make(
        code,
        code === 'payload_too_large'
          ? 'request body must be at most 64 KiB'
          : 'request body is not valid JSON',
      );
    }
    // A plugin's refusal of the request (a precondition that fails) is a refusal of its form too: never a 500.
    if (isClientHttpError(exception)) return formRefusal(exception.message);
    return make('internal_error', 'internal error; the request id identifies it in the logs');
  }
}
