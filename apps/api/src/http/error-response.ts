import type { ErrorCode, ErrorDetail } from '@app/domain';

/** The body of every non-2xx response. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
  details?: ErrorDetail[];
  request_id: string;
}

/** The body of a request refused for its form before any route ran: `field` names the part (path, request). */
export function formErrorBody(field: string, message: string, requestId: string): ErrorBody {
  return {
    error: message,
    code: 'validation_failed',
    details: [{ field, rule: 'form', message }],
    request_id: requestId,
  };
}

/** The one place that decides the HTTP status of each error code; a new code without a status fails to compile. */
export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  validation_failed: 400,
  invalid_json: 400,
  unauthorized: 401,
  webhook_not_found: 404,
  not_found: 404,
  webhook_limit_reached: 409,
  webhook_disabled: 409,
  no_unclaimed_secret: 409,
  idempotency_key_reused: 409,
  payload_too_large: 413,
  request_timeout: 408,
  request_headers_too_large: 431,
  expectation_failed: 417,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
};
