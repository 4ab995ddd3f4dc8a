import { ConfigError, loadConfig } from './config.schema';

const key = (b: number) => Buffer.alloc(32, b).toString('base64');

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.http).toEqual({ host: '0.0.0.0', port: 3000 });
    expect(c.database).toEqual({ url: 'postgres://postgres@127.0.0.1:5432/webhooks', poolSize: 10 });
    expect(c.redis.url).toBe('redis://127.0.0.1:6379/0');
    expect(c.webhooks.maxPerProject).toBe(5);
    expect(c.secrets.gracePeriodHours).toBe(24);
    expect(c.secrets.usingDevelopmentKey).toBe(true);
    expect(c.audit).toEqual({ stream: 'webhooks:audit', streamMaxLen: 1_000_000, retentionDays: 365 });
    expect(c.events.stream).toBe('webhooks:events');
    expect(c.rotation).toEqual({ sweepEveryMs: 10_000, noticeHours: 24 });
    expect(c.delivery.retryScheduleSeconds).toEqual([0, 30, 120, 600, 3600, 21600]);
    expect(c.targets.allowCidrs).toEqual([]);
    expect(c.admin.token).toBeNull();
    expect(c.log.level).toBe('info');
  });

  it('parses a key ring: the first key encrypts, all decrypt', () => {
    const c = loadConfig({ SECRETS_ENCRYPTION_KEYS: `new:${key(1)},old:${key(2)}` });
    expect(c.secrets.keyRing.map((k) => k.id)).toEqual(['new', 'old']);
    expect(c.secrets.keyRing[0].key).toEqual(Buffer.alloc(32, 1));
    expect(c.secrets.usingDevelopmentKey).toBe(false);
  });

  it('lists every problem in one error', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        MAX_WEBHOOKS_PER_PROJECT: '0',
        SECRETS_ENCRYPTION_KEYS: 'k1:short',
        DELIVERY_RETRY_SCHEDULE: '0,abc',
        TARGET_ALLOW_CIDRS: '10.0.0.0/8,not-a-cidr',
        LOG_LEVEL: 'loud',
        SECRET_GRACE_PERIOD_HOURS: '500',
        HOST: '999.1.1.1',
      });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toHaveLength(9);
    for (const name of [
      'PORT',
      'DATABASE_URL',
      'MAX_WEBHOOKS_PER_PROJECT',
      'SECRETS_ENCRYPTION_KEYS',
      'DELIVERY_RETRY_SCHEDULE',
      'TARGET_ALLOW_CIDRS',
      'LOG_LEVEL',
      'SECRET_GRACE_PERIOD_HOURS',
      'HOST',
    ]) {
      expect(error!.message).toContain(name);
    }
  });

  it('takes an IP address or a host name for HOST, nothing else', () => {
    for (const host of [
      '0.0.0.0',
      '127.0.0.1',
      '::',
      '::1',
      'localhost',
      'api.internal',
      'api-1.example.com.',
    ])
      expect(loadConfig({ HOST: host }).http.host).toBe(host);
    for (const host of ['999.1.1.1', '1.2.3', 'a b', 'http://x', '-x.example', 'x_y.example', 'a'.repeat(64)])
      expect(() => loadConfig({ HOST: host })).toThrow(/HOST must be/);
  });

  it('refuses one stream for both audit events and published events', () => {
    expect(() => loadConfig({ AUDIT_STREAM: 'shared', EVENTS_STREAM: 'shared' })).toThrow(
      /AUDIT_STREAM and EVENTS_STREAM must be different/,
    );
  });

  it('takes any non-empty ADMIN_TOKEN outside production; empty turns the dashboard off', () => {
    expect(loadConfig({ ADMIN_TOKEN: 'short' }).admin.token).toBe('short');
    expect(loadConfig({ ADMIN_TOKEN: '' }).admin.token).toBeNull();
    const keys = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
    expect(() =>
      loadConfig({ NODE_ENV: 'production', SECRETS_ENCRYPTION_KEYS: keys, ADMIN_TOKEN: 'short' }),
    ).toThrow(/ADMIN_TOKEN must be at least 16 characters when NODE_ENV=production/);
  });

  it('requires a key ring in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/SECRETS_ENCRYPTION_KEYS is required/);
    expect(loadConfig({ NODE_ENV: 'production', SECRETS_ENCRYPTION_KEYS: `k:${key(3)}` }).nodeEnv).toBe(
      'production',
    );
  });

  it('refuses duplicate key ids and bad ids', () => {
    expect(() => loadConfig({ SECRETS_ENCRYPTION_KEYS: `a:${key(1)},a:${key(2)}` })).toThrow(/appears twice/);
    expect(() => loadConfig({ SECRETS_ENCRYPTION_KEYS: `:${key(1)}` })).toThrow(/id:base64key/);
  });
});
