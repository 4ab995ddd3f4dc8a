import { ValidationFailedError, type ErrorDetail } from '@app/domain';
import { MAX_JSON_DEPTH } from '@app/validation';

/** Longest field name an answer echoes: a longer one is cut there, with an ellipsis. */
export const MAX_ECHOED_NAME = 64;

/**
 * `name` as an answer echoes it: cut at {@link MAX_ECHOED_NAME} characters with an ellipsis (never between the two
 * halves of a surrogate pair), so that a name of 60 KB does not come back three times over.
 */
export function echoedName(name: string): string {
  if (name.length <= MAX_ECHOED_NAME) return name;
  const last = name.charCodeAt(MAX_ECHOED_NAME - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? MAX_ECHOED_NAME - 1 : MAX_ECHOED_NAME;
  return `${name.slice(0, end)}…`;
}

/** The detail of a field that no request has: a typo must not pass silently. */
export function unknownFieldDetail(name: string): ErrorDetail {
  const field = echoedName(name);
  return { field, rule: 'unknown_field', message: `unknown field "${field}"` };
}

/** Refuses `fields` as unknown, each named; the first one's sentence is the error's. */
export function unknownFieldsError(fields: string[]): ValidationFailedError {
  const details = fields.map(unknownFieldDetail);
  return new ValidationFailedError(details[0].message, details);
}

/**
 * Refuses the query parameters of a route that reads none (every route that changes something), each named: the
 * sentence is the first one's.
 */
export function unknownQueryParametersError(names: string[]): ValidationFailedError {
  const details = names.map((name) => {
    const detail = unknownFieldDetail(name);
    return { ...detail, message: `unknown query parameter "${detail.field}": this route reads none` };
  });
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

/** Refuses a body sent with a content coding (gzip, br…): bodies are at most 64 KiB of JSON, taken as sent. */
export function contentEncodingError(coding: string): ValidationFailedError {
  const message = `content-encoding "${echoedName(coding)}" is not supported: send the JSON body as is`;
  return new ValidationFailedError(message, [{ field: 'content-encoding', rule: 'form', message }]);
}
