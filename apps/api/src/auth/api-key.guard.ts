import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '@app/domain';
import type { ApiKeyPrincipal } from '@app/persistence';
import { ApiKeyCache } from './api-key.cache';
import { RateLimitExceeded, RateLimiterService, rateLimitHeaders } from '../rate-limit/rate-limiter.service';

/** The request, once the API key guard has authenticated it. */
export interface AuthenticatedRequest extends FastifyRequest {
  principal?: ApiKeyPrincipal;
}

/**
 * Every `/v1` route: the `anchor-api-key` header decides the project. Missing, unknown or revoked: 401.
 * An authenticated key then spends one request of its per-minute budget (429 `rate_limited` beyond it).
 *
 * The API runs {@link admit} for every `/v1` path as soon as a request arrives, before its body is read (see
 * `configureApiApp`): a caller without a valid key gets its 401 whatever it sends, and no body of an
 * unauthenticated request is parsed. The guard on the controllers then finds the request admitted; it admits
 * it itself where that hook is not installed.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly apiKeys: ApiKeyCache,
    private readonly rateLimiter: RateLimiterService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    await this.admit(http.getRequest<AuthenticatedRequest>(), http.getResponse<FastifyReply>());
    return true;
  }

  /** Authenticates the request and spends one request of its key's budget, once; throws 401 or 429. */
  async admit(req: AuthenticatedRequest, reply: FastifyReply): Promise<void> {
    if (req.principal) return;
    const header = req.headers['anchor-api-key'];
    const principal = await this.apiKeys.authenticate(typeof header === 'string' ? header : undefined);
    if (!principal) throw new UnauthorizedError();
    req.principal = principal;
    if (this.rateLimiter.enabled) {
      const reading = this.rateLimiter.refresh(principal.apiKeyId);
      if (reading) await reading;
      try {
        const state = this.rateLimiter.consume(principal.apiKeyId);
        if (state) void reply.headers(rateLimitHeaders(state));
      } catch (e) {
        if (e instanceof RateLimitExceeded) void reply.headers(rateLimitHeaders(e.state));
        throw e;
      }
    }
  }
}
