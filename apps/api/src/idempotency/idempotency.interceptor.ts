import {
  applyDecorators,
  Injectable,
  Logger,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { createHash } from 'node:crypto';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import type { FastifyReply } from 'fastify';
import { from, lastValueFrom, type Observable } from 'rxjs';
import {
  Clock,
  IdempotencyKeyReusedError,
  SecretCipher,
  ValidationFailedError,
  type RequestContext,
} from '@app/domain';
import { Database } from '@app/persistence';
import type { AuthenticatedRequest } from '../auth/api-key.guard';
import { requestContextOf } from '../auth/request-context.decorator';

const TTL_MS = 24 * 3600_000;
// A pending claim older than this belongs to a process that died mid-request: a retry may take it over.
const STALE_PENDING_MS = 60_000;
// A duplicate that arrives while the first request still runs waits this long for its response.
const WAIT_FOR_FIRST_MS = 10_000;
const POLL_MS = 50;
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` for POST routes: the same key, body and project within 24 hours returns the first
 * response again (status and body) without running the request twice; the same key with another request is
 * 409 `idempotency_key_reused`.
 *
 * The key is claimed in Postgres before the handler runs (insert-first on the primary key), so concurrent
 * duplicates never both execute: the later one waits for the first response. The stored response may hold a
 * webhook secret (create, rotate), so it is sealed with the secrets key ring (AES-256-GCM, bound to project
 * and key). A request that fails gives its key back, so a retry runs it again; only successes are replayed.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger(IdempotencyInterceptor.name);

  constructor(
    private readonly db: Database,
    private readonly cipher: SecretCipher,
    private readonly clock: Clock,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = req.headers['idempotency-key'];
    if (header === undefined) return next.handle();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    // Nest applies the route's status after the interceptors; this is the status the first response gets.
    const status =
      (Reflect.getMetadata(HTTP_CODE_METADATA, context.getHandler()) as number | undefined) ??
      (req.method === 'POST' ? 201 : 200);
    return from(this.run(requestContextOf(req), header, req, reply, status, next));
  }

  private async run(
    ctx: RequestContext,
    header: string | string[],
    req: AuthenticatedRequest,
    reply: FastifyReply,
    status: number,
    next: CallHandler,
  ): Promise<unknown> {
    const key = typeof header === 'string' ? header : '';
    if (!KEY_FORMAT.test(key)) {
      throw new ValidationFailedError('Idempotency-Key must be 1 to 255 printable ASCII characters', [
        { field: 'Idempotency-Key', rule: 'format', message: 'must be 1 to 255 printable ASCII characters' },
      ]);
    }
    const requestHash = hashRequest(req);
    const repo = this.db.repos.idempotencyKeys;
    const aad = `idempotency:${ctx.projectId}:${key}`;
    const deadline = Date.now() + WAIT_FOR_FIRST_MS;
    for (;;) {
      const now = this.clock.now();
      const claimed = await repo.claim({
        projectId: ctx.projectId,
        key,
        requestHash,
        now,
        expiresAt: new Date(now.getTime() + TTL_MS),
        staleBefore: new Date(now.getTime() - STALE_PENDING_MS),
      });
      if (claimed) break;
      const record = await repo.find(ctx.projectId, key);
      if (!record) continue; // released or purged in between: claim again
      if (record.requestHash !== requestHash) throw new IdempotencyKeyReusedError();
      if (record.state === 'done' && record.response && record.keyId) {
        void reply.header('idempotent-replayed', 'true');
        return JSON.parse(this.cipher.open({ keyId: record.keyId, ciphertext: record.response }, aad));
      }
      if (Date.now() > deadline) {
        throw new IdempotencyKeyReusedError(
          'a request with this Idempotency-Key is still in progress; retry shortly',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }

    let body: unknown;
    try {
      body = await lastValueFrom(next.handle(), { defaultValue: undefined });
    } catch (e) {
      await repo.release(ctx.projectId, key).catch((err: Error) => {
        // The claim turns stale after STALE_PENDING_MS and a retry takes it over then.
        this.logger.warn(
          { request_id: ctx.requestId, reason: err.message },
          'cannot release idempotency key',
        );
      });
      throw e;
    }
    const sealed = this.cipher.seal(JSON.stringify(body ?? null), aad);
    await repo
      .complete({
        projectId: ctx.projectId,
        key,
        status,
        keyId: sealed.keyId,
        response: sealed.ciphertext,
      })
      .catch((err: Error) => {
        // The change is done; the caller gets its response. A retry after the claim goes stale runs again.
        this.logger.warn(
          { request_id: ctx.requestId, reason: err.message },
          'cannot store idempotent response',
        );
      });
    return body;
  }
}

/** Same method, path and JSON body (key order ignored) → same hash. */
function hashRequest(req: AuthenticatedRequest): string {
  return createHash('sha256')
    .update(`${req.method} ${req.url.split('?')[0]}\n${canonicalJson(req.body ?? null)}`)
    .digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Marks a POST route as idempotent under the `Idempotency-Key` header (and documents the header). Put it
 * after the guards: the key is scoped to the caller's project.
 */
export const Idempotent = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Retry safely: the same key and body within 24 hours returns the first response again; the same key with another body is 409 idempotency_key_reused',
    }),
  );
