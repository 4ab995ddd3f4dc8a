import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { parseCidr } from '@app/validation';

/** One key of the at-rest encryption key ring. */
export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/** The typed configuration, read once at boot from the environment. */
export interface AppConfig {
  /**
   * `requestTimeoutMs`: how long a client may take to send one whole request, headers and body; a request still
   * incomplete then is answered 408 and its connection closed (a slow or stalled client cannot hold it open).
   */
  http: { host: string; port: number; requestTimeoutMs: number };
  /**
   * `statementTimeoutMs`: how long Postgres may take over one statement of the API's and the worker's pools
   * before it cancels it (0: no limit); see `dataSourceOptions`.
   */
  database: {
    url: string;
    poolSize: number;
    statementTimeoutMs: number;
    /** Hot reads as named prepared statements (`DATABASE_PREPARED_STATEMENTS`, default true). */
    preparedStatements: boolean;
  };
  /**
   * `cluster`: REDIS_URL names a seed node of a Redis Cluster (database 0, the only one a cluster has); `seeds`:
   * further seed nodes (REDIS_CLUSTER_NODES): the client tries every seed until one answers.
   */
  redis: { url: string; cluster: boolean; seeds: RedisSeed[] };
  secrets: {
    /** The first key encrypts; every key decrypts. */
    keyRing: EncryptionKey[];
    /** True when no key ring was configured and the fixed development key is in use. */
    usingDevelopmentKey: boolean;
    gracePeriodHours: number;
  };
  webhooks: { maxPerProject: number };
  audit: { stream: string; streamMaxLen: number; retentionDays: number };
  events: { stream: string };
  rotation: { sweepEveryMs: number; noticeHours: number };
  delivery: { retryScheduleSeconds: number[] };
  /** Operator escape hatch: CIDRs that webhook URLs and deliveries may reach even though they are not public. */
  targets: { allowCidrs: string[] };
  admin: { token: string | null };
  log: { level: string };
  /** File the worker touches while healthy; its container health check reads the file's age. */
  worker: { heartbeatFile: string };
  /** Requests per minute and API key, counted in Redis across replicas; 0 turns rate limiting off. */
  rateLimit: { perMinute: number };
  /**
   * How long an API replica may reuse a key lookup; changes reach it at once through Postgres notifications,
   * this bounds what a silently broken notification feed could miss. 0 looks every request up.
   */
  apiKeyCache: { ttlSeconds: number; confirmSeconds: number };
}

/** A Redis Cluster node to start from, besides the one REDIS_URL names. */
export interface RedisSeed {
  host: string;
  port: number;
}

/**
 * `host:port` entries, comma-separated (an IPv6 address in brackets: `[fd00::7]:6379`); the port defaults to 6379.
 * Returns the seeds and a problem for each entry that is not one.
 */
export function parseRedisSeeds(raw: string): { seeds: RedisSeed[]; problems: string[] } {
  const seeds: RedisSeed[] = [];
  const problems: string[] = [];
  for (const entry of raw.split(',').map((e) => e.trim())) {
    if (entry === '') continue;
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]@]+))(?::(\d{1,5}))?$/.exec(entry);
    const host = m?.[1] ?? m?.[2];
    const port = m?.[3] === undefined ? 6379 : Number(m[3]);
    if (!m || !host || (m[1] !== undefined && isIP(host) !== 6) || port < 1 || port > 65535) {
      problems.push(
        `REDIS_CLUSTER_NODES entry "${entry}" is not host:port (port 1 to 65535; IPv6 in brackets)`,
      );
      continue;
    }
    seeds.push({ host, port });
  }
  return { seeds, problems };
}

/** Thrown when the environment is invalid; lists every problem at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

// A fixed, publicly known key so that a development checkout works with no setup. It protects nothing,
// which is why production refuses to boot without SECRETS_ENCRYPTION_KEYS or with this key first in it.
const DEVELOPMENT_KEY: EncryptionKey = {
  id: 'dev',
  key: createHash('sha256').update('webhook-secrets development key - not for production').digest(),
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Longest `Retry-After` a delivery honours: a receiver must not be able to park a delivery beyond the retention. */
export const MAX_RETRY_AFTER_SECONDS = 6 * 3600;
/** Most a retry's delay is spread upwards (+10 %), so deliveries that failed together do not come back together. */
export const RETRY_JITTER = 0.1;

/**
 * Longest a DELIVERY_RETRY_SCHEDULE may stretch a delivery: its first delay, then each retry's delay with its full
 * jitter, or the longest `Retry-After` honoured when that is longer (a receiver answering 429 or 503 with one each
 * time). A day short of the delivery log's retention of 7 days (DELIVERY_RETENTION_MS), which purges a row however
 * it stands, for the attempts' own time and a rescued one's wait: a longer schedule would have pending deliveries
 * purged, and a delay past what a date can hold fails every delivery.
 */
const MAX_RETRY_SCHEDULE_SECONDS = 6 * 24 * 3600;

/** The longest span, in seconds, from a delivery's recording to its last attempt under `schedule` (see above). */
function longestRetrySpanSeconds(schedule: readonly number[]): number {
  return schedule.reduce(
    (sum, s, i) => sum + (i === 0 ? s : Math.max(s * (1 + RETRY_JITTER), MAX_RETRY_AFTER_SECONDS)),
    0,
  );
}

/**
 * Parses and validates the environment into an {@link AppConfig}. Collects every problem and throws one
 * {@link ConfigError} listing them all, so an operator fixes a bad deployment in one pass.
 */
export function loadConfig(env: Env = process.env): AppConfig {
  const problems: string[] = [];
  const str = (name: string, def: string): string => {
    const v = env[name];
    return v === undefined || v === '' ? def : v;
  };
  // A Redis key that other processes name too: spaces around it (a quoting slip in an env file) or control
  // characters would make it a different stream from the one the publishers and subscribers use.
  const streamName = (name: string, def: string): string => {
    const v = str(name, def);
    if (v.trim() === '' || v.trim() !== v || /\p{Cc}/u.test(v)) {
      problems.push(
        `${name} must be a stream name without spaces around it or control characters (got ${JSON.stringify(v)})`,
      );
      return def;
    }
    return v;
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
      return def;
    }
    return Number(raw);
  };
  /** `check` returns what else is wrong with a URL of the right protocol, if anything. */
  const url = (
    name: string,
    def: string,
    protocols: string[],
    check: (u: URL) => string | undefined,
  ): string => {
    const v = str(name, def);
    // The URL parser drops spaces around a URL and tabs or newlines inside it, but node-postgres does not: such a
    // quoting slip would pass here and then fail every connection. Not echoed: a URL may hold a password.
    if (v.trim() !== '' && (v.trim() !== v || /\p{Cc}/u.test(v))) {
      problems.push(`${name} must not have spaces around it or control characters`);
      return v;
    }
    try {
      const u = new URL(v);
      const problem = !protocols.includes(u.protocol)
        ? `must use ${protocols.join(' or ')} (got "${u.protocol}")`
        : !percentDecodes(u.username, u.password, u.pathname)
          ? 'has a user name, password or path that is not valid percent-encoding (write a "%" in them as %25)'
          : u.port === '0'
            ? 'has port 0 (a port is 1 to 65535)'
            : check(u);
      if (problem !== undefined) problems.push(`${name} ${problem}`);
    } catch {
      problems.push(`${name} is not a valid URL`);
    }
    return v;
  };

  const nodeEnv = str('NODE_ENV', 'development');
  // " production" would be taken for another environment, without the checks production gets.
  if (nodeEnv.trim() !== nodeEnv || /\p{Cc}/u.test(nodeEnv))
    problems.push(
      `NODE_ENV must not have spaces around it or control characters (got ${JSON.stringify(nodeEnv)})`,
    );
  // Likewise "Production": meant as production, it would run on the development key without a word.
  else if (nodeEnv !== 'production' && nodeEnv.toLowerCase() === 'production')
    problems.push(
      `NODE_ENV must be written production, in lower case, for the production checks to apply (got "${nodeEnv}")`,
    );

  let keyRing: EncryptionKey[] = [DEVELOPMENT_KEY];
  let usingDevelopmentKey = true;
  const rawKeys = env.SECRETS_ENCRYPTION_KEYS;
  if (rawKeys && rawKeys.trim() !== '') {
    const parsed = parseKeyRing(rawKeys, problems);
    if (parsed.length > 0) {
      keyRing = parsed;
      // The development key given as the ring's first key (the README prints it, for moving off it), under any
      // id, encrypts with a key anyone can read, as much as leaving the ring out does.
      usingDevelopmentKey = parsed[0].key.equals(DEVELOPMENT_KEY.key);
      if (usingDevelopmentKey && nodeEnv === 'production')
        problems.push(
          'SECRETS_ENCRYPTION_KEYS must not have the public development key first when NODE_ENV=production (it may follow a key of your own, to be read while moving off it)',
        );
    }
  } else if (nodeEnv === 'production') {
    problems.push('SECRETS_ENCRYPTION_KEYS is required when NODE_ENV=production');
  }

  const retryRaw = str('DELIVERY_RETRY_SCHEDULE', '0,30,120,600,3600,21600');
  const retryScheduleSeconds = retryRaw.split(',').map((s) => s.trim());
  if (
    retryScheduleSeconds.length < 1 ||
    retryScheduleSeconds.length > 20 ||
    !retryScheduleSeconds.every((s) => /^\d+$/.test(s))
  ) {
    problems.push(
      `DELIVERY_RETRY_SCHEDULE must be 1 to 20 comma-separated whole seconds (got "${retryRaw}")`,
    );
  } else if (longestRetrySpanSeconds(retryScheduleSeconds.map(Number)) > MAX_RETRY_SCHEDULE_SECONDS) {
    problems.push(
      `DELIVERY_RETRY_SCHEDULE must add up to at most ${MAX_RETRY_SCHEDULE_SECONDS} seconds (6 days), each retry counted with its 10 % jitter or as the ${MAX_RETRY_AFTER_SECONDS} seconds of the longest Retry-After when that is longer, so that a delivery's last attempt comes within the delivery log's 7-day retention (got "${retryRaw}")`,
    );
  }

  const allowCidrs = str('TARGET_ALLOW_CIDRS', '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  // The parser the API and the worker use, so that what passes here cannot stop them later.
  for (const cidr of allowCidrs) {
    try {
      parseCidr(cidr);
    } catch (e) {
      problems.push(
        `TARGET_ALLOW_CIDRS entry "${cidr}" is not a CIDR such as 10.0.0.0/8 or fd00::/8: ${(e as Error).message}`,
      );
    }
  }

  const preparedRaw = str('DATABASE_PREPARED_STATEMENTS', 'true');
  if (preparedRaw !== 'true' && preparedRaw !== 'false')
    problems.push(`DATABASE_PREPARED_STATEMENTS must be true or false (got "${preparedRaw}")`);
  const preparedStatements = preparedRaw !== 'false';

  const clusterRaw = str('REDIS_CLUSTER', 'false');
  if (clusterRaw !== 'true' && clusterRaw !== 'false')
    problems.push(`REDIS_CLUSTER must be true or false (got "${clusterRaw}")`);
  const redisCluster = clusterRaw === 'true';
  const redisSeeds = parseRedisSeeds(str('REDIS_CLUSTER_NODES', ''));
  problems.push(...redisSeeds.problems);
  if (redisSeeds.seeds.length > 0 && !redisCluster)
    problems.push('REDIS_CLUSTER_NODES names seed nodes of a Redis Cluster: it needs REDIS_CLUSTER=true');

  const level = str('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(level))
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${level}")`);

  // Any non-empty token turns the dashboard on; a short one is warned about at boot (see configWarnings), and
  // refused in production, where the dashboard can retry and delete jobs.
  const adminToken = env.ADMIN_TOKEN && env.ADMIN_TOKEN !== '' ? env.ADMIN_TOKEN : null;
  // Spaces around it or control characters are a quoting slip in an env file, not a token anyone means to type
  // (and a bearer token, RFC 6750's token68, cannot carry them at all).
  if (adminToken !== null && (adminToken.trim() !== adminToken || /\p{Cc}/u.test(adminToken)))
    problems.push('ADMIN_TOKEN must not have spaces around it or control characters');
  if (adminToken !== null && adminToken.length < 16 && nodeEnv === 'production')
    problems.push('ADMIN_TOKEN must be at least 16 characters when NODE_ENV=production');

  // Spaces around it are a quoting slip: the worker would beat into a file its health check does not read.
  const heartbeatFile = str('WORKER_HEARTBEAT_FILE', '/tmp/webhook-secrets-worker.alive');
  if (heartbeatFile.trim() !== heartbeatFile || /\p{Cc}/u.test(heartbeatFile))
    problems.push(
      `WORKER_HEARTBEAT_FILE must be a path without spaces around it or control characters (got ${JSON.stringify(heartbeatFile)})`,
    );

  const host = str('HOST', '0.0.0.0');
  if (!isListenHost(host))
    problems.push(`HOST must be an IPv4 or IPv6 address or a host name (got "${host}")`);

  const config: AppConfig = {
    http: {
      host,
      port: int('PORT', 3000, 0, 65535),
      requestTimeoutMs: int('HTTP_REQUEST_TIMEOUT_MS', 30_000, 1000, 600_000),
    },
    database: {
      url: url(
        'DATABASE_URL',
        'postgres://postgres@127.0.0.1:5432/webhooks',
        ['postgres:', 'postgresql:'],
        (u) => {
          // A socket directory may stand in for the host (`?host=/var/run/postgresql`); host and user may also
          // come from the query or the environment, as node-postgres takes them.
          if (u.hostname === '' && !u.searchParams.has('host') && !env.PGHOST) return 'names no host';
          if (u.username === '' && !u.searchParams.has('user') && !env.PGUSER && !env.USER)
            return 'names no user';
          return undefined;
        },
      ),
      poolSize: int('DATABASE_POOL_SIZE', 10, 1, 500),
      statementTimeoutMs: int('DATABASE_STATEMENT_TIMEOUT_MS', 15_000, 0, 3_600_000),
      preparedStatements,
    },
    redis: {
      url: url('REDIS_URL', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:'], (u) => {
        if (u.hostname === '') return 'names no host';
        // Anything else after the port would be read as database 0.
        if (!/^\/?(\d{1,9})?$/.test(u.pathname))
          return `path must be a database number such as /0 (got "${u.pathname}")`;
        if (redisCluster && Number(u.pathname.slice(1) || 0) !== 0)
          return 'must name database 0 with REDIS_CLUSTER=true (a cluster has no other)';
        return undefined;
      }),
      cluster: redisCluster,
      seeds: redisSeeds.seeds,
    },
    secrets: { keyRing, usingDevelopmentKey, gracePeriodHours: int('SECRET_GRACE_PERIOD_HOURS', 24, 0, 168) },
    webhooks: { maxPerProject: int('MAX_WEBHOOKS_PER_PROJECT', 5, 1, 1_000_000) },
    audit: {
      stream: streamName('AUDIT_STREAM', 'webhooks:audit'),
      streamMaxLen: int('AUDIT_STREAM_MAXLEN', 1_000_000, 1000, 1_000_000_000),
      retentionDays: int('AUDIT_RETENTION_DAYS', 365, 1, 36500),
    },
    events: { stream: streamName('EVENTS_STREAM', 'webhooks:events') },
    rotation: {
      sweepEveryMs: int('ROTATION_SWEEP_EVERY_MS', 10_000, 100, 86_400_000),
      noticeHours: int('ROTATION_NOTICE_HOURS', 24, 0, 8760),
    },
    delivery: { retryScheduleSeconds: retryScheduleSeconds.map(Number) },
    targets: { allowCidrs },
    admin: { token: adminToken },
    log: { level },
    worker: { heartbeatFile },
    rateLimit: { perMinute: int('RATE_LIMIT_PER_MINUTE', 6000, 0, 100_000_000) },
    apiKeyCache: {
      ttlSeconds: int('API_KEY_CACHE_SECONDS', 60, 0, 3600),
      confirmSeconds: int('API_KEY_CONFIRM_SECONDS', 5, 0, 300),
    },
  };
  if (config.audit.stream === config.events.stream)
    problems.push(
      `AUDIT_STREAM and EVENTS_STREAM must be different streams (both are "${config.events.stream}"): the worker would read audit events as events to deliver`,
    );
  // The worker keeps the entries of EVENTS_STREAM that are not events in `<EVENTS_STREAM>:rejected`, capped at
  // about 1,000 entries: as the audit stream, that would hand subscribers entries that are not audit events and
  // trim the audit history to those 1,000.
  else if (config.audit.stream === `${config.events.stream}:rejected`)
    problems.push(
      `AUDIT_STREAM must not be "${config.audit.stream}": the worker sets aside there the entries of EVENTS_STREAM that are not events`,
    );
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function parseKeyRing(raw: string, problems: string[]): EncryptionKey[] {
  const ring: EncryptionKey[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of raw.split(',').entries()) {
    const sep = entry.indexOf(':');
    const id = sep > 0 ? entry.slice(0, sep).trim() : '';
    const b64 = sep > 0 ? entry.slice(sep + 1).trim() : '';
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
      problems.push(
        `SECRETS_ENCRYPTION_KEYS entry ${i + 1} must look like id:base64key with a short [A-Za-z0-9_-] id`,
      );
      continue;
    }
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      problems.push(`SECRETS_ENCRYPTION_KEYS key "${id}" must be 32 bytes, base64-encoded`);
      continue;
    }
    if (seen.has(id)) {
      problems.push(`SECRETS_ENCRYPTION_KEYS key id "${id}" appears twice`);
      continue;
    }
    seen.add(id);
    ring.push({ id, key });
  }
  return ring;
}

/**
 * True when every part decodes: the drivers decode a URL's user name and password (and node-postgres its database
 * name) with `decodeURIComponent`, which throws on a "%" not followed by two hex digits.
 */
function percentDecodes(...parts: string[]): boolean {
  try {
    for (const part of parts) decodeURIComponent(part);
    return true;
  } catch {
    return false;
  }
}

/** An address or a name the API can listen on: an IP literal, or a DNS name (not an all-numeric look-alike). */
function isListenHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  if (/^[\d.]+$/.test(host)) return false;
  return /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(
    host,
  );
}
