import { randomBytes } from 'node:crypto';
import { bootLogger, configWarnings, DEVELOPMENT_KEY_WARNING } from './boot-logging';
import { loadConfig } from './config.schema';

describe('configWarnings', () => {
  it('warns about the development key, TARGET_ALLOW_CIDRS and a short ADMIN_TOKEN, and about nothing else', () => {
    expect(configWarnings(loadConfig({}))).toEqual([DEVELOPMENT_KEY_WARNING]);
    const keys = `k1:${randomBytes(32).toString('base64')}`;
    expect(configWarnings(loadConfig({ SECRETS_ENCRYPTION_KEYS: keys }))).toEqual([]);
    expect(
      configWarnings(loadConfig({ SECRETS_ENCRYPTION_KEYS: keys, TARGET_ALLOW_CIDRS: '10.0.0.0/8,::1/128' })),
    ).toEqual([
      'TARGET_ALLOW_CIDRS lets webhooks and deliveries reach non-public ranges: 10.0.0.0/8, ::1/128',
    ]);
    expect(
      configWarnings(loadConfig({ SECRETS_ENCRYPTION_KEYS: keys, ADMIN_TOKEN: 'x'.repeat(16) })),
    ).toEqual([]);
    expect(
      configWarnings(loadConfig({ SECRETS_ENCRYPTION_KEYS: keys, ADMIN_TOKEN: 'x'.repeat(15) })),
    ).toEqual([expect.stringContaining('ADMIN_TOKEN is shorter than 16 characters')]);
  });
});

describe('bootLogger', () => {
  it('writes pino lines like the application logger: context, level, and the stack of errors', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = bootLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    logger.log('Starting Nest application...', 'NestFactory');
    logger.warn('careful');
    logger.error('api cannot start: boom', 'Error: boom\n    at x', 'api');
    expect(lines.map(({ level, context, msg, stack }) => ({ level, context, msg, stack }))).toEqual([
      { level: 30, context: 'NestFactory', msg: 'Starting Nest application...', stack: undefined },
      { level: 40, context: undefined, msg: 'careful', stack: undefined },
      { level: 50, context: 'api', msg: 'api cannot start: boom', stack: 'Error: boom\n    at x' },
    ]);
    for (const line of lines) expect(line).toEqual(expect.objectContaining({ pid: process.pid }));
    logger.log({ msg: 'with an object', secret: 'a'.repeat(64), headers: { 'anchor-api-key': 'ak_x' } });
    expect(JSON.stringify(lines[3])).not.toMatch(/a{64}|ak_x/);
  });

  it('writes an object of fields with the message that follows it, as the application logger does', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = bootLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    // What `new Logger('WorkerHeartbeatService').warn({ reason }, 'a dependency does not answer')` hands it.
    logger.warn({ reason: 'Driver not Connected' }, 'a dependency does not answer', 'WorkerHeartbeatService');
    logger.error({ reason: 'boom' }, 'relay failed', 'AuditRelayService');
    logger.log({ reason: 'no message' }, 'Ctx');
    expect(
      lines.map(({ level, context, msg, reason, stack }) => ({ level, context, msg, reason, stack })),
    ).toEqual([
      {
        level: 40,
        context: 'WorkerHeartbeatService',
        msg: 'a dependency does not answer',
        reason: 'Driver not Connected',
        stack: undefined,
      },
      { level: 50, context: 'AuditRelayService', msg: 'relay failed', reason: 'boom', stack: undefined },
      { level: 30, context: 'Ctx', msg: undefined, reason: 'no message', stack: undefined },
    ]);
  });

  it('redacts fields named secret, api_key or apiKey at the top, one and two levels deep', () => {
    const lines: string[] = [];
    const logger = bootLogger('info', { write: (line: string) => void lines.push(line) });
    for (const name of ['secret', 'api_key', 'apiKey']) {
      logger.log({ msg: 'top', [name]: 'leak-0' });
      logger.log({ msg: 'one', job: { [name]: 'leak-1' } });
      logger.log({ msg: 'two', job: { data: { [name]: 'leak-2' } } });
    }
    expect(lines).toHaveLength(9);
    for (const line of lines) {
      expect(line).not.toMatch(/leak-/);
      expect(line).toContain('[redacted]');
    }
  });

  it('writes only what LOG_LEVEL lets through', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = bootLogger('warn', { write: (line: string) => void lines.push(JSON.parse(line)) });
    logger.log('InstanceLoader chatter');
    logger.warn('careful');
    expect(lines.map((l) => l.msg)).toEqual(['careful']);
  });
});
