import { ValidationFailedError, type ErrorDetail } from '@app/domain';
import { MAX_JSON_DEPTH } from '@app/validation';

/** The detail of a field that no request has: a typo must not pass silently. */
export function unknownFieldDetail(field: string): ErrorDetail {
  return { field, rule: 'unknown_field', message: `unknown field "${field}"` };
}

/** Refuses `fields` as unknown, each named; the first one's sentence is the error's. */
export function unknownFieldsError(fields: string[]): ValidationFailedError {
  const details = fields.map(unknownFieldDetail);
  return new ValidationFailedError(details[0].message, details);
}

/** Refuses a body that is not a JSON object (an array, a string, a number…). */
export function notAnObjectError(): ValidationFailedError {
  const message = 'request body must be a JSON object';
  return new ValidationFailedError(message, [{ field: 'body', rule: 'type', message }]);
}

/** Refuses a body that nests deeper than any route's body can ({@link MAX_JSON_DEPTH} levels). */
export function tooDeepError(): ValidationFailedError {
  const message = `request body must not nest deeper than ${MAX_JSON_DEPTH} levels`;
  return new ValidationFailedError(message, [{ field: 'body', rule: 'depth', message }]);
}

/** Refuses an HTTP/1.1 request without a Host header, which RFC 9112 requires to be answered 400. */
export function missingHostError(): ValidationFailedError {
  const message = 'an HTTP/1.1 request must have a Host header';
  return new ValidationFailedError(message, [{ field: 'host', rule: 'form', message }]);
}
