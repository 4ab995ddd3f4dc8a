import { createHash } from 'node:crypto';
import { ConfigError, loadConfig } from './config.schema';

const key = (b: number) => Buffer.alloc(32, b).toString('base64');

/** The problems loadConfig lists for `env`, none when it loads. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    return (e as ConfigError).problems;
  }
}

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.http).toEqual({ host: '0.0.0.0', port: 3000, requestTimeoutMs: 30_000 });
    expect(c.database).toEqual({
      url: 'postgres://postgres@127.0.0.1:5432/webhooks',
      poolSize: 10,
      statementTimeoutMs: 15_000,
      preparedStatements: true,
    });
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

  it('checks TARGET_ALLOW_CIDRS with the parser the API and the worker use', () => {
    expect(
      loadConfig({ TARGET_ALLOW_CIDRS: ' 10.0.0.0/8 , fd00::/8,127.0.0.1 ' }).targets.allowCidrs,
    ).toEqual(['10.0.0.0/8', 'fd00::/8', '127.0.0.1']);
    const problems = (value: string): string[] => {
      try {
        loadConfig({ TARGET_ALLOW_CIDRS: value });
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    expect(problems('10.0.0.1/8')).toEqual([
      'TARGET_ALLOW_CIDRS entry "10.0.0.1/8" is not a CIDR such as 10.0.0.0/8 or fd00::/8: host bits are set; did you mean 10.0.0.0/8?',
    ]);
    for (const bad of [':::::/64', '10.1/8', '10.0.0.0/33', 'fe80::1%eth0/128', 'example.com/32'])
      expect(problems(`192.168.0.0/16,${bad}`)).toEqual([expect.stringContaining(`entry "${bad}"`)]);
  });

  it('refuses a REDIS_URL whose path is not a database number, and URLs without a host', () => {
    for (const ok of [
      'redis://127.0.0.1:6379',
      'redis://127.0.0.1:6379/',
      'redis://r:6379/15',
      'rediss://u:p@r/3',
    ])
      expect(problemsOf({ REDIS_URL: ok })).toEqual([]);
    expect(problemsOf({ REDIS_URL: 'redis://127.0.0.1:6379/abc' })).toEqual([
      'REDIS_URL path must be a database number such as /0 (got "/abc")',
    ]);
    expect(problemsOf({ REDIS_URL: 'redis://127.0.0.1:6379/1/x' })).toHaveLength(1);
    expect(problemsOf({ REDIS_URL: 'redis://' })).toEqual(['REDIS_URL names no host']);
    expect(loadConfig({ REDIS_URL: 'redis://seed:7000', REDIS_CLUSTER: 'true' }).redis).toEqual({
      url: 'redis://seed:7000',
      cluster: true,
      seeds: [],
    });
    expect(
      loadConfig({
        REDIS_URL: 'redis://seed:7000',
        REDIS_CLUSTER: 'true',
        REDIS_CLUSTER_NODES: 'node-b:7001, 10.0.0.3 ,[fd00::7]:7002,',
      }).redis.seeds,
    ).toEqual([
      { host: 'node-b', port: 7001 },
      { host: '10.0.0.3', port: 6379 },
      { host: 'fd00::7', port: 7002 },
    ]);
    expect(
      problemsOf({ REDIS_CLUSTER: 'true', REDIS_CLUSTER_NODES: 'a:0,b:65536,c:x,[nope]:1,d:1/2,ok:7000' }),
    ).toEqual(
      ['a:0', 'b:65536', 'c:x', '[nope]:1', 'd:1/2'].map(
        (e) => `REDIS_CLUSTER_NODES entry "${e}" is not host:port (port 1 to 65535; IPv6 in brackets)`,
      ),
    );
    expect(problemsOf({ REDIS_CLUSTER_NODES: 'node-b:7001' })).toEqual([
      'REDIS_CLUSTER_NODES names seed nodes of a Redis Cluster: it needs REDIS_CLUSTER=true',
    ]);
    expect(loadConfig({}).redis.cluster).toBe(false);
    expect(problemsOf({ REDIS_URL: 'redis://seed:7000/2', REDIS_CLUSTER: 'true' })).toEqual([
      'REDIS_URL must name database 0 with REDIS_CLUSTER=true (a cluster has no other)',
    ]);
    expect(problemsOf({ REDIS_CLUSTER: 'yes' })).toEqual(['REDIS_CLUSTER must be true or false (got "yes")']);
    expect(problemsOf({ DATABASE_URL: 'postgres://' })).toEqual(['DATABASE_URL names no host']);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).database.preparedStatements).toBe(false);
    expect(problemsOf({ DATABASE_PREPARED_STATEMENTS: 'off' })).toEqual([
      'DATABASE_PREPARED_STATEMENTS must be true or false (got "off")',
    ]);
    // Port 0 would pass here and fail every connection.
    expect(problemsOf({ DATABASE_URL: 'postgres://u:p@db:0/x', REDIS_URL: 'redis://r:00/0' })).toEqual([
      'DATABASE_URL has port 0 (a port is 1 to 65535)',
      'REDIS_URL has port 0 (a port is 1 to 65535)',
    ]);
    expect(problemsOf({ DATABASE_URL: 'postgres:///webhooks', PGHOST: 'db', USER: 'svc' })).toEqual([]);
    expect(problemsOf({ DATABASE_URL: 'postgres://db/x?user=svc', USER: '' })).toEqual([]);
    expect(problemsOf({ DATABASE_URL: 'postgres://@db:5432/x', USER: 'svc' })).toEqual([]); // user from $USER
    expect(problemsOf({ DATABASE_URL: 'postgres://db/x', USER: '', PGUSER: '' })).toEqual([
      'DATABASE_URL names no user',
    ]);
    expect(
      problemsOf({ DATABASE_URL: 'postgres:///webhooks?host=/var/run/postgresql', USER: 'svc' }),
    ).toEqual([]);
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

  it('takes HTTP_REQUEST_TIMEOUT_MS from 1 s to 10 min, never 0 (no limit at all)', () => {
    expect(loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '1000' }).http.requestTimeoutMs).toBe(1000);
    expect(loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '600000' }).http.requestTimeoutMs).toBe(600_000);
    for (const bad of ['0', '999', '600001', '30s']) {
      expect(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: bad })).toThrow(
        /HTTP_REQUEST_TIMEOUT_MS must be an integer/,
      );
    }
  });

  it("takes a DELIVERY_RETRY_SCHEDULE whose attempts all come within the delivery log's retention", () => {
    // 0 + 86,400 × 1.1 + 345,600 × 1.1 = 475,200 s.
    expect(loadConfig({ DELIVERY_RETRY_SCHEDULE: '0,86400,345600' }).delivery.retryScheduleSeconds).toEqual([
      0, 86400, 345600,
    ]);
    // The first attempt's delay has no jitter: six days exactly.
    expect(loadConfig({ DELIVERY_RETRY_SCHEDULE: '518400' }).delivery.retryScheduleSeconds).toEqual([518400]);
    // Twenty attempts, each retry waiting the longest Retry-After: 19 × 6 h, 4.75 days.
    const twenty = ['0', ...Array<string>(19).fill('1')].join(',');
    expect(loadConfig({ DELIVERY_RETRY_SCHEDULE: twenty }).delivery.retryScheduleSeconds).toHaveLength(20);
    for (const bad of [
      '518401',
      '0,300000,300000',
      // 480,000 s as written, 528,000 with the jitter.
      '0,480000',
      // 432,010 s as written, but ten retries each told to wait 6 h by Retry-After come first: 691,200.
      '0,1,1,1,1,1,1,1,1,1,1,432000',
      // Past what a date can hold, a delay made every delivery fail (500 on a test event) instead of the start.
      '99999999999999',
      '1,99999999999999999999',
    ]) {
      expect(() => loadConfig({ DELIVERY_RETRY_SCHEDULE: bad })).toThrow(
        /DELIVERY_RETRY_SCHEDULE must add up to at most 518400 seconds \(6 days\), each retry counted with its 10 % jitter or as the 21600 seconds of the longest Retry-After/,
      );
    }
  });

  it('refuses one stream for both audit events and published events', () => {
    expect(() => loadConfig({ AUDIT_STREAM: 'shared', EVENTS_STREAM: 'shared' })).toThrow(
      /AUDIT_STREAM and EVENTS_STREAM must be different/,
    );
  });

  it('refuses as the audit stream the one where published entries that are not events are set aside', () => {
    expect(() => loadConfig({ AUDIT_STREAM: 'webhooks:events:rejected' })).toThrow(
      'AUDIT_STREAM must not be "webhooks:events:rejected": the worker sets aside there the entries of EVENTS_STREAM that are not events',
    );
    expect(() => loadConfig({ AUDIT_STREAM: 'ev:rejected', EVENTS_STREAM: 'ev' })).toThrow(
      /AUDIT_STREAM must not be "ev:rejected"/,
    );
    expect(loadConfig({ AUDIT_STREAM: 'ev:rejected', EVENTS_STREAM: 'other' }).audit.stream).toBe(
      'ev:rejected',
    );
  });

  it.each(['   ', ' webhooks:audit', 'webhooks:audit\t', 'web\nhooks'])(
    'refuses the stream name %j, which would not be the stream the other processes use',
    (bad) => {
      expect(() => loadConfig({ AUDIT_STREAM: bad })).toThrow(/AUDIT_STREAM must be a stream name/);
      expect(() => loadConfig({ EVENTS_STREAM: bad })).toThrow(/EVENTS_STREAM must be a stream name/);
    },
  );

  it.each(['   ', ' token-with-a-space-before', 'token-with-a-newline-after\n', 'tab\tinside-a-long-token'])(
    'refuses the ADMIN_TOKEN %j, a quoting slip rather than a token',
    (bad) => {
      expect(() => loadConfig({ ADMIN_TOKEN: bad })).toThrow(
        /ADMIN_TOKEN must not have spaces around it or control characters/,
      );
    },
  );

  it('takes any non-empty ADMIN_TOKEN outside production; empty turns the dashboard off', () => {
    expect(loadConfig({ ADMIN_TOKEN: 'short' }).admin.token).toBe('short');
    expect(loadConfig({ ADMIN_TOKEN: '' }).admin.token).toBeNull();
    const keys = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
    expect(() =>
      loadConfig({ NODE_ENV: 'production', SECRETS_ENCRYPTION_KEYS: keys, ADMIN_TOKEN: 'short' }),
    ).toThrow(/ADMIN_TOKEN must be at least 16 characters when NODE_ENV=production/);
  });

  it('refuses the public development key as the first key of the ring in production, and only there', () => {
    const dev = createHash('sha256').update('webhook-secrets development key - not for production').digest();
    const devRing = `k1:${dev.toString('base64')}`;
    expect(problemsOf({ NODE_ENV: 'production', SECRETS_ENCRYPTION_KEYS: devRing })).toEqual([
      expect.stringContaining('must not have the public development key first when NODE_ENV=production'),
    ]);
    expect(loadConfig({ SECRETS_ENCRYPTION_KEYS: devRing }).secrets.usingDevelopmentKey).toBe(true);
    // Behind a key of its own, to read what it sealed while moving off it.
    const after = loadConfig({
      NODE_ENV: 'production',
      SECRETS_ENCRYPTION_KEYS: `k2:${key(4)},dev:${dev.toString('base64')}`,
    });
    expect(after.secrets.usingDevelopmentKey).toBe(false);
  });

  it('requires a key ring in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/SECRETS_ENCRYPTION_KEYS is required/);
    expect(() =>
      loadConfig({ NODE_ENV: 'production', SECRETS_ENCRYPTION_KEYS: `k:${key(3)}` }),
    ).not.toThrow();
  });

  // WHATWG's URL parser drops spaces around a URL and tabs or newlines inside it, node-postgres does not: such a
  // DATABASE_URL passed the check, then every connection failed ("getaddrinfo ENOTFOUND base").
  it.each([
    ' postgres://postgres@db:5432/webhooks',
    'postgres://postgres@db:5432/webhooks\n',
    'postgres://post\tgres@db/w',
  ])('refuses the DATABASE_URL %j, a quoting slip that the URL check alone would let through', (bad) => {
    expect(problemsOf({ DATABASE_URL: bad })).toEqual([
      'DATABASE_URL must not have spaces around it or control characters',
    ]);
    expect(
      problemsOf({ REDIS_URL: bad.replace('postgres://', 'redis://').replace('/webhooks', '/0') }),
    ).toEqual(['REDIS_URL must not have spaces around it or control characters']);
    // Nothing in it is echoed: a URL may hold a password.
    expect(problemsOf({ DATABASE_URL: ' postgres://u:hunter2@db/w' }).join()).not.toContain('hunter2');
  });

  // The drivers decode the user name and the password (and node-postgres the database name): a "%" not followed by
  // two hex digits made the API stop with a bare "URI malformed" and the CLI retry for half a minute.
  it('refuses URLs whose user name, password or database name is not valid percent-encoding', () => {
    const message = (name: string) =>
      `${name} has a user name, password or path that is not valid percent-encoding (write a "%" in them as %25)`;
    expect(
      problemsOf({
        DATABASE_URL: 'postgres://svc:50%off@db:5432/webhooks',
        REDIS_URL: 'redis://:p%zz@cache:6379/0',
      }),
    ).toEqual([message('DATABASE_URL'), message('REDIS_URL')]);
    expect(problemsOf({ DATABASE_URL: 'postgres://svc@db:5432/web%E0hooks' })).toEqual([
      message('DATABASE_URL'),
    ]);
    expect(problemsOf({ REDIS_URL: 'redis://us%er@cache:6379/0' })).toEqual([message('REDIS_URL')]);
    // Nothing in it is echoed: a URL may hold a password.
    expect(problemsOf({ DATABASE_URL: 'postgres://svc:hunter%2@db/w' }).join()).not.toContain('hunter');
    // Well-formed escapes pass.
    expect(
      problemsOf({
        DATABASE_URL: 'postgres://svc:50%25off%40x@db:5432/webhooks',
        REDIS_URL: 'redis://:p%2Fw@c/0',
      }),
    ).toEqual([]);
  });

  // The worker wrote its heartbeat to a file named " " in its working directory, and its health check (which reads
  // the file the variable names, or the default) never passed.
  it.each([' ', ' /tmp/worker.alive', '/tmp/worker.alive\n'])(
    'refuses the WORKER_HEARTBEAT_FILE %j, a quoting slip rather than a path',
    (bad) => {
      expect(() => loadConfig({ WORKER_HEARTBEAT_FILE: bad })).toThrow(
        `WORKER_HEARTBEAT_FILE must be a path without spaces around it or control characters (got ${JSON.stringify(bad)})`,
      );
    },
  );

  it('refuses a NODE_ENV with spaces around it, which would turn the production checks off', () => {
    expect(() => loadConfig({ NODE_ENV: 'production ' })).toThrow(
      /NODE_ENV must not have spaces around it or control characters \(got "production "\)/,
    );
    expect(() => loadConfig({ NODE_ENV: ' production' })).toThrow(/NODE_ENV must not have spaces/);
    expect(loadConfig({ NODE_ENV: 'test' }).secrets.usingDevelopmentKey).toBe(true);
  });

  it.each(['Production', 'PRODUCTION'])(
    'refuses the NODE_ENV %j, production in other letters, which would turn the production checks off',
    (bad) => {
      expect(() => loadConfig({ NODE_ENV: bad })).toThrow(
        `NODE_ENV must be written production, in lower case, for the production checks to apply (got "${bad}")`,
      );
    },
  );

  it('refuses duplicate key ids and bad ids', () => {
    expect(() => loadConfig({ SECRETS_ENCRYPTION_KEYS: `a:${key(1)},a:${key(2)}` })).toThrow(/appears twice/);
    expect(() => loadConfig({ SECRETS_ENCRYPTION_KEYS: `:${key(1)}` })).toThrow(/id:base64key/);
  });
});
