import type { FastifyInstance } from 'fastify';
import { InvalidJsonError } from '@app/domain';

/** Largest accepted request body: 64 KiB. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Every body is parsed as JSON whatever its content type (a body that is not JSON is a 400, never a 415),
 * an empty body reads as no body (so `rotate-secret` needs none), and prototype-poisoning keys are refused.
 */
export function registerJsonBodyParser(fastify: FastifyInstance): void {
  const strict = fastify.getDefaultJsonParser('error', 'error');
  const parse = (
    req: Parameters<typeof strict>[0],
    body: string | Buffer,
    done: (err: Error | null, value?: unknown) => void,
  ) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    void strict(req, text, (err, value) => (err ? done(new InvalidJsonError()) : done(null, value)));
  };
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, parse);
}
