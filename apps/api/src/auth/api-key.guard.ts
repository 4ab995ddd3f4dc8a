import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '@app/domain';
import type { ApiKeyPrincipal } from '@app/persistence';
import { ApiKeyCache } from './api-key-cache';
import { RateLimitExceeded, RateLimiter, rateLimitHeaders } from '../rate-limit/rate-limiter.service';

/** The request, once the API key guard has authenticated it. */
export interface AuthenticatedRequest extends FastifyRequest {
  principal?: ApiKeyPrincipal;
}

/**
 * Every `/v1` route: the `anchor-api-key` header decides the project. Missing, unknown or revoked: 401.
 * An authenticated key then spends one request of its per-minute budget (429 `rate_limited` beyond it).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly apiKeys: ApiKeyCache,
    private readonly rateLimiter: RateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = req.headers['anchor-api-key'];
    const principal = await this.apiKeys.authenticate(typeof header === 'string' ? header : undefined);
    if (!principal) throw new UnauthorizedError();
    req.principal = principal;
    if (this.rateLimiter.enabled) {
      const reply = context.switchToHttp().getResponse<FastifyReply>();
      try {
        const state = this.rateLimiter.consume(principal.apiKeyId);
        if (state) void reply.headers(rateLimitHeaders(state));
      } catch (e) {
        if (e instanceof RateLimitExceeded) void reply.headers(rateLimitHeaders(e.state));
        throw e;
      }
    }
    return true;
  }
}
