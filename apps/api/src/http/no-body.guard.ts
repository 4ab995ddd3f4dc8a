import { Injectable, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { notAnObjectError, unknownFieldsError } from './request-refusals';

/**
 * Refuses a body on a route that takes none, by the same rules as every other route: no body, `{}` or `null`
 * pass; each field is an unknown field, named (a typo such as `{"grace_period_hour": 0}` on a claim or a
 * delete must not pass silently while the action runs); anything but an object is not a body at all.
 */
@Injectable()
export class NoBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const body: unknown = context.switchToHttp().getRequest<{ body?: unknown }>().body;
    if (body === undefined || body === null) return true;
    if (typeof body !== 'object' || Array.isArray(body)) throw notAnObjectError();
    const fields = Object.keys(body);
    if (fields.length > 0) throw unknownFieldsError(fields);
    return true;
  }
}

/** Marks a route that takes no request body (see {@link NoBodyGuard}); runs after authentication. */
export const NoBody = (): MethodDecorator & ClassDecorator => UseGuards(NoBodyGuard);
