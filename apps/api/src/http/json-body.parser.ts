import type { FastifyInstance } from 'fastify';
import { InvalidJsonError } from '@app/domain';
import { nestsDeeperThan } from '@app/validation';
import { contentEncodingError, tooDeepError, unknownFieldsError } from './request-refusals';

/** Strict: a body that is not valid UTF-8 is refused, never repaired with replacement characters. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Only JSON's own whitespace (RFC 8259): `trim()` would also drop NBSP, U+2028, VT and the like, which are not JSON. */
const JSON_WHITESPACE_ONLY = /^[ \t\n\r]*$/;

/** Largest accepted request body: 64 KiB. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * The path of the first prototype-poisoning key in parsed JSON (`__proto__`, or `constructor` holding a
 * `prototype`), or undefined. `JSON.parse` makes such keys plain own properties, so walking them is safe.
 */
export function findPoisoningKey(value: unknown, path = '', depth = 0): string | undefined {
  if (depth > 64 || value === null || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    const keyPath = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (k === '__proto__') return keyPath;
    if (k === 'constructor' && v !== null && typeof v === 'object' && 'prototype' in v) return keyPath;
    const inner = findPoisoningKey(v, keyPath, depth + 1);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/**
 * Every body is parsed as JSON whatever its content type (a body that is not JSON is a 400, never a 415) and
 * must be valid UTF-8 (else 400 `invalid_json`); an empty body reads as no body (so `rotate-secret` needs
 * none), and prototype-poisoning keys are refused: valid JSON all the same, so they are reported as the
 * unknown fields they are, by name. A body nested deeper than 64 levels is refused too (400 `validation_failed`).
 */
export function registerJsonBodyParser(fastify: FastifyInstance): void {
  const strict = fastify.getDefaultJsonParser('error', 'error');
  const parse = (
    req: Parameters<typeof strict>[0],
    body: string | Buffer,
    done: (err: Error | null, value?: unknown) => void,
  ) => {
    const coding = contentCodingOf(req.headers['content-encoding']);
    if (coding !== undefined) return done(contentEncodingError(coding));
    let text: string;
    try {
      text = typeof body === 'string' ? body : UTF8.decode(body);
    } catch {
      return done(new InvalidJsonError('request body is not valid UTF-8'));
    }
    // The decoder has dropped the one leading BOM UTF-8 allows; Fastify's parser would drop a second, not JSON.
    if (text.charCodeAt(0) === 0xfeff) return done(new InvalidJsonError());
    if (JSON_WHITESPACE_ONLY.test(text)) return done(null, undefined);
    void strict(req, text, (err, value) => {
      // Refused before anything walks it by recursion (validation, the Idempotency-Key hash), which a body of a
      // few kilobytes nested thousands deep would take past the stack.
      if (!err) return nestsDeeperThan(value) ? done(tooDeepError()) : done(null, value);
      const field = poisoningKeyOf(text);
      if (field === undefined) return done(new InvalidJsonError());
      done(unknownFieldsError([field]));
    });
  };
  fastify.removeAllContentTypeParsers();
  // Read as bytes: decoding to a string first would turn invalid UTF-8 into U+FFFD and pass it on.
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT_BYTES }, parse);
}

/**
 * The content coding a body declares other than `identity`, or undefined. Bodies are read as they come: a gzip body
 * would otherwise be reported as invalid UTF-8, and a plain one labelled gzip taken as if the label were not there.
 */
function contentCodingOf(header: string | string[] | undefined): string | undefined {
  const codings = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  return codings.length > 0 ? codings.join(', ') : undefined;
}

/** {@link findPoisoningKey} of a body the strict parser refused; undefined when it is not JSON at all. */
function poisoningKeyOf(text: string): string | undefined {
  try {
    return findPoisoningKey(JSON.parse(text));
  } catch {
    return undefined;
  }
}
