import {
  applyDecorators,
  Injectable,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { AuthenticatedRequest } from '../auth/api-key.guard';
import { IdempotencyService, KEY_FORMAT } from './idempotency.service';

/** Claims the request's `Idempotency-Key` before the handler runs (see {@link IdempotencyService}). */
@Injectable()
export class IdempotencyGuard implements CanActivate {
  constructor(private readonly idempotency: IdempotencyService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await this.idempotency.begin(context.switchToHttp().getRequest<AuthenticatedRequest>());
    return true;
  }
}

/**
 * Marks a POST route as idempotent under the `Idempotency-Key` header (and documents the header). Its guard
 * runs after the controller's guards: the key is scoped to the caller's project.
 */
export const Idempotent = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    UseGuards(IdempotencyGuard),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Retry safely: the same key and body within 24 hours returns the first response again; the same key with another body is 409 idempotency_key_reused. 1 to 255 printable ASCII characters without spaces; any other value is 400',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: KEY_FORMAT.source },
    }),
  );
