/** Every error code the service answers with. The HTTP layer maps each to exactly one status. */
export type ErrorCode =
  | 'validation_failed'
  | 'invalid_json'
  | 'unauthorized'
  | 'webhook_not_found'
  | 'not_found'
  | 'webhook_limit_reached'
  | 'webhook_disabled'
  | 'no_unclaimed_secret'
  | 'idempotency_key_reused'
  | 'payload_too_large'
  | 'request_timeout'
  | 'request_headers_too_large'
  | 'expectation_failed'
  | 'rate_limited'
  | 'internal_error'
  | 'service_unavailable';

/** One violated rule of a validation failure. */
export interface ErrorDetail {
  field: string;
  rule: string;
  message: string;
}

/** Base of every error the libs throw on purpose. Carries a stable code; never an HTTP status. */
export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  readonly details?: ErrorDetail[];
  /** Set when the same request may well succeed this many seconds later (answered as `Retry-After`). */
  readonly retryAfterSeconds?: number;
}

/** Input broke one or more rules; `details` lists each. */
export class ValidationFailedError extends DomainError {
  readonly code = 'validation_failed';
  constructor(
    message: string,
    override readonly details: ErrorDetail[],
  ) {
    super(message);
  }
}

/** The request body is not JSON. */
export class InvalidJsonError extends DomainError {
  readonly code = 'invalid_json';
  constructor(message = 'request body is not valid JSON') {
    super(message);
  }
}

/** No usable API key. */
export class UnauthorizedError extends DomainError {
  readonly code = 'unauthorized';
  constructor(message = 'a valid anchor-api-key header is required') {
    super(message);
  }
}

/** The webhook does not exist, is deleted, or belongs to another project (indistinguishable on purpose). */
export class WebhookNotFoundError extends DomainError {
  readonly code = 'webhook_not_found';
  constructor(message = 'webhook not found') {
    super(message);
  }
}

/** Something other than a webhook was not found (a route, a policy, an API key). */
export class NotFoundError extends DomainError {
  readonly code = 'not_found';
}

/** The project already has the maximum number of live webhooks. */
export class WebhookLimitReachedError extends DomainError {
  readonly code = 'webhook_limit_reached';
  constructor(limit: number) {
    super(`a project may have at most ${limit} webhooks; delete one first`);
  }
}

/** The operation needs an enabled webhook. */
export class WebhookDisabledError extends DomainError {
  readonly code = 'webhook_disabled';
  constructor(message = 'webhook is disabled; enable it first') {
    super(message);
  }
}

/** There is no secret waiting to be claimed. */
export class NoUnclaimedSecretError extends DomainError {
  readonly code = 'no_unclaimed_secret';
  constructor(message = 'there is no unclaimed secret for this webhook') {
    super(message);
  }
}

/** An Idempotency-Key was sent again with a different request. */
export class IdempotencyKeyReusedError extends DomainError {
  readonly code = 'idempotency_key_reused';
  constructor(
    message = 'this Idempotency-Key was already used with a different request',
    /** Set when the key is only busy (its first request still running), not used for another request. */
    override readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

/** Too many requests for this API key. */
export class RateLimitedError extends DomainError {
  readonly code = 'rate_limited';
  constructor(
    override readonly retryAfterSeconds: number,
    message = 'too many requests; retry later',
  ) {
    super(message);
  }
}
