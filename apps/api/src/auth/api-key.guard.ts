import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiKeysService, UnauthorizedError } from '@app/domain';
import type { ApiKeyPrincipal } from '@app/persistence';

/** The request, once the API key guard has authenticated it. */
export interface AuthenticatedRequest extends FastifyRequest {
  principal?: ApiKeyPrincipal;
}

/** Every `/v1` route: the `anchor-api-key` header decides the project. Missing, unknown or revoked: 401. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly apiKeys: ApiKeysService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = req.headers['anchor-api-key'];
    const principal = await this.apiKeys.authenticate(typeof header === 'string' ? header : undefined);
    if (!principal) throw new UnauthorizedError();
    req.principal = principal;
    return true;
  }
}
