import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { UnauthorizedError, type RequestContext } from '@app/domain';
import type { AuthenticatedRequest } from './api-key.guard';

/** Builds the domain's request context from an authenticated request. */
export function requestContextOf(req: AuthenticatedRequest): RequestContext {
  if (!req.principal) throw new UnauthorizedError();
  return {
    projectId: req.principal.projectId,
    actor: { type: 'api_key', id: req.principal.apiKeyId },
    requestId: String(req.id),
  };
}

/** Injects the caller's {@link RequestContext}: project, actor and request id. */
export const CurrentContext = createParamDecorator((_: unknown, ctx: ExecutionContext): RequestContext =>
  requestContextOf(ctx.switchToHttp().getRequest<AuthenticatedRequest>()),
);
