import { Writable } from 'node:stream';
import pino from 'pino';
import { QueryFailedError } from 'typeorm';
import { LOG_REDACTION } from '@app/config';

// The processes' log redaction, tested on the error TypeORM really throws: here, the one lib that imports TypeORM.

/** The lines a logger with the processes' redaction writes, parsed. */
function capture() {
  const lines: Record<string, any>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { logger: pino({ redact: LOG_REDACTION }, out), lines };
}

describe('log redaction', () => {
  it('blanks the values a failed query was sent with, and keeps the query and the reason', () => {
    const { logger, lines } = capture();
    const values = ['v1:k1:c2VhbGVkLXNlY3JldA==', 'https://hooks.example.com/in?token=tok_live_123'];
    const failed = new QueryFailedError(
      'SELECT create_webhook($1, $2)',
      values,
      new Error('duplicate key value violates unique constraint'),
    );
    logger.error({ err: failed, request_id: 'r1' }, 'unhandled error');
    logger.warn({ error: failed }, 'retrying');
    expect(lines).toHaveLength(2);
    const text = JSON.stringify(lines);
    for (const v of values) expect(text).not.toContain(v);
    expect(lines[0].err).toMatchObject({
      query: 'SELECT create_webhook($1, $2)',
      parameters: '[redacted]',
      message: 'duplicate key value violates unique constraint',
    });
    expect(lines[1].error.parameters).toBe('[redacted]');
  });

  it("blanks Postgres's detail of a failed query, which quotes the row's values, on the error and its driverError", () => {
    const { logger, lines } = capture();
    const driverError = Object.assign(new Error('duplicate key value violates unique constraint "uq_url"'), {
      code: '23505',
      detail: 'Key (url)=(https://hooks.example.com/in?token=tok_live_456) already exists.',
      constraint: 'uq_url',
    });
    const failed = new QueryFailedError('INSERT INTO webhooks(url) VALUES ($1)', ['x'], driverError);
    logger.error({ err: failed }, 'unhandled error');
    logger.warn({ error: failed }, 'retrying');
    expect(JSON.stringify(lines)).not.toContain('tok_live_456');
    expect(lines[0].err).toMatchObject({ code: '23505', constraint: 'uq_url', detail: '[redacted]' });
    expect(lines[0].err.driverError.detail).toBe('[redacted]');
    expect(lines[1].error.detail).toBe('[redacted]');
    expect(lines[1].error.driverError.detail).toBe('[redacted]');
  });
});
