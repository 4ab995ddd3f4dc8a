import type { LoggerService } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Job } from 'bullmq';
import Redis from 'ioredis';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  AuditStreamPublisher,
  AuditStreamSubscriber,
  tailHeartbeatKey,
  throwawayTailGroup,
  type AuditEvent,
} from '@app/audit';
import { APP_CONFIG, loadConfig, type AppConfig } from '@app/config';
import { ApiKeysService, ManualClock, SecretsService } from '@app/domain';
import { Database } from '@app/persistence';
import { JobName, REDIS } from '@app/queue';
import { API_APP_OPTIONS, apiAdapter, configureApiApp } from '../apps/api/src/api.app';
import { ApiModule } from '../apps/api/src/api.module';
import { runCli } from '../apps/cli/src/main';
import { auditCommand } from '../apps/cli/src/commands/audit.command';
import { AuditRelayProcessor } from '../apps/worker/src/audit/audit-relay.processor';
import { AuditRelayService } from '../apps/worker/src/audit/audit-relay.service';
import { AuditRetentionService } from '../apps/worker/src/audit/audit-retention.service';
import { HousekeepingProcessor } from '../apps/worker/src/housekeeping/housekeeping.processor';
import { WorkerModule } from '../apps/worker/src/worker.module';
import { eventually } from './support/eventually';
import { HttpClient } from './support/http-client';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_REDIS_URL } from './support/test-env';

// Every log line of every process booted here, scanned for secrets and keys at the end.
const logLines: string[] = [];
const captureLogger: LoggerService = {
  log: (...a: unknown[]) => void logLines.push(JSON.stringify(a)),
  error: (...a: unknown[]) => void logLines.push(JSON.stringify(a)),
  warn: (...a: unknown[]) => void logLines.push(JSON.stringify(a)),
  debug: (...a: unknown[]) => void logLines.push(JSON.stringify(a)),
  verbose: (...a: unknown[]) => void logLines.push(JSON.stringify(a)),
  fatal: (...a: unknown[]) => void logLines.push(JSON.stringify(a)),
};
// Every secret and API key any test saw; none may appear in a stream entry, an audit row or a log line.
const secretsSeen = new Set<string>();
const streamsUsed = new Set<string>();

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const valid = { url: 'https://hooks.example.com/anchor?token=abc', subscribed_events: ['task.completed'] };

function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const restore = (): void => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  Object.assign(process.env, env);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  // An async body keeps the environment until it settles (Nest reads the config while compiling).
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

interface Api {
  app: NestFastifyApplication;
  http: HttpClient;
  db: Database;
  config: AppConfig;
  newKey(projectId?: string): Promise<{ key: string; projectId: string; apiKeyId: string }>;
  close(): Promise<void>;
}

async function bootApi(env: Record<string, string>): Promise<Api> {
  const { moduleRef, config } = await withEnv(env, async () => ({
    config: loadConfig(),
    moduleRef: await Test.createTestingModule({ imports: [ApiModule] }).compile(),
  }));
  const app = moduleRef.createNestApplication<NestFastifyApplication>(apiAdapter(config.http), {
    ...API_APP_OPTIONS,
    logger: captureLogger,
  });
  configureApiApp(app, config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const keys = app.get(ApiKeysService);
  return {
    app,
    http: new HttpClient(`http://127.0.0.1:${port}`),
    db: app.get(Database),
    config,
    async newKey(projectId?: string) {
      const k = await keys.create({ projectId, name: 'test', actor: { type: 'admin', id: 'test' } });
      secretsSeen.add(k.api_key);
      return { key: k.api_key, projectId: k.project_id, apiKeyId: k.api_key_id };
    },
    close: () => app.close(),
  };
}

async function bootWorker(
  env: Record<string, string>,
  publisher?: (redis: Redis, config: AppConfig) => AuditStreamPublisher,
): Promise<TestingModule> {
  const module = await withEnv(env, async () => {
    let builder = Test.createTestingModule({ imports: [WorkerModule] });
    if (publisher) {
      builder = builder
        .overrideProvider(AuditStreamPublisher)
        .useFactory({ factory: publisher, inject: [REDIS, APP_CONFIG] });
    }
    return builder.compile();
  });
  module.useLogger(captureLogger);
  await module.init();
  return module;
}

/** Publishes for real, then fails `crashes` times: a relay dying between its XADDs and marking them. */
class CrashingPublisher extends AuditStreamPublisher {
  calls = 0;
  constructor(
    redis: Redis,
    config: AppConfig,
    private crashes: number,
  ) {
    super(redis, config);
  }
  override async publish(events: AuditEvent[]): Promise<string[]> {
    this.calls++;
    const ids = await super.publish(events);
    if (this.crashes > 0) {
      this.crashes--;
      throw new Error('simulated crash after XADD, before marking published');
    }
    return ids;
  }
}

interface StreamEntry {
  entryId: string;
  type: string;
  projectId: string;
  event: AuditEvent;
  raw: string[];
}

describe('audit trail', () => {
  const redis = new Redis(TEST_REDIS_URL);
  const newStream = (): string => {
    const s = `audit-e2e:${randomUUID()}`;
    streamsUsed.add(s);
    return s;
  };

  afterAll(async () => {
    await redis.quit();
  });

  async function entries(stream: string, projectId?: string): Promise<StreamEntry[]> {
    const raw = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
    return raw
      .map(([entryId, fields]) => {
        const f: Record<string, string> = {};
        for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
        return {
          entryId,
          type: f.type,
          projectId: f.project_id,
          event: JSON.parse(f.event) as AuditEvent,
          raw: fields,
        };
      })
      .filter((e) => projectId === undefined || e.projectId === projectId);
  }

  async function waitFor<T>(
    read: () => Promise<T>,
    done: (v: T) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<T> {
    const { v } = await eventually(
      async () => {
        const v = await read();
        return done(v) && { v };
      },
      timeoutMs,
      what,
    );
    return v;
  }

  /** Audit rows of the project that the relay has not marked published yet. */
  async function unpublishedCount(db: Database, projectId: string): Promise<number> {
    const rows: { n: number }[] = await db.dataSource.query(
      'SELECT count(*)::int AS n FROM audit_events WHERE project_id = $1 AND published_at IS NULL',
      [projectId],
    );
    return rows[0].n;
  }

  async function dbEvents(db: Database, projectId: string): Promise<AuditEvent[]> {
    const rows: { event: AuditEvent }[] = await db.dataSource.query(
      'SELECT event FROM audit_events WHERE project_id = $1 ORDER BY seq',
      [projectId],
    );
    return rows.map((r) => r.event);
  }

  async function cli(args: string[]): Promise<Record<string, unknown>> {
    const lines: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      expect(await runCli(args)).toBe(0);
    } finally {
      spy.mockRestore();
    }
    return JSON.parse(lines.join('').trim().split('\n').pop()!) as Record<string, unknown>;
  }

  describe('events of every state-changing route, on the stream', () => {
    let api: Api;
    let worker: TestingModule;
    const stream = newStream();

    beforeAll(async () => {
      api = await bootApi({ AUDIT_STREAM: stream });
      worker = await bootWorker({ AUDIT_STREAM: stream });
    });
    afterAll(async () => {
      await worker.close();
      await api.close();
    });

    it('emits exactly the documented events, with actor, request id and data, in order', async () => {
      const { key, projectId, apiKeyId } = await api.newKey();
      const created = await api.http.post('/v1/webhooks', {
        key,
        body: { ...valid, description: 'first' },
        headers: { 'x-request-id': 'req-create' },
      });
      expect(created.status).toBe(201);
      secretsSeen.add(created.body.secret);
      const id = created.body.id as string;
      const refused = await api.http.post('/v1/webhooks', {
        key,
        body: { ...valid, url: 'https://localhost/hook?token=refused' },
        headers: { 'x-request-id': 'req-refused' },
      });
      expect(refused.status).toBe(400);
      const patched = await api.http.patch(`/v1/webhooks/${id}`, {
        key,
        body: {
          url: 'https://hooks.example.com/moved?token=xyz#frag',
          description: 'second',
          subscribed_events: ['task.completed', 'task.failed'],
          enabled: false,
        },
        headers: { 'x-request-id': 'req-patch' },
      });
      expect(patched.status).toBe(200);
      // A patch that changes nothing records nothing.
      expect(
        (await api.http.patch(`/v1/webhooks/${id}`, { key, body: { description: 'second' } })).status,
      ).toBe(200);
      const rotated = await api.http.post(`/v1/webhooks/${id}/rotate-secret`, {
        key,
        body: { grace_period_hours: 1 },
        headers: { 'x-request-id': 'req-rotate' },
      });
      expect(rotated.status).toBe(200);
      secretsSeen.add(rotated.body.secret);
      const rejected = await api.http.patch(`/v1/webhooks/${id}`, {
        key,
        body: { url: 'https://127.0.0.1/hook?sig=topsecret' },
        headers: { 'x-request-id': 'req-reject' },
      });
      expect(rejected.status).toBe(400);
      // Housekeeping destroys the previous secret once its grace period is over. Batches of 500 until none is
      // left: suites that ran before this one may have left due previous secrets of their own.
      let expired = 0;
      for (;;) {
        const n = await worker
          .get(SecretsService)
          .expireDue(worker.get(Database), new Date(Date.now() + 2 * 3600_000), 500);
        expired += n;
        if (n < 500) break;
      }
      expect(expired).toBeGreaterThanOrEqual(1);
      const deleted = await api.http.delete(`/v1/webhooks/${id}`, {
        key,
        headers: { 'x-request-id': 'req-delete' },
      });
      expect(deleted.status).toBe(200);

      const fingerprints: { fingerprint: string }[] = [];
      const expected = [
        'api_key.created',
        'webhook.created',
        'webhook.url_rejected',
        'webhook.updated',
        'webhook.secret.rotated',
        'webhook.url_rejected',
        'webhook.secret.previous_expired',
        'webhook.deleted',
      ];
      const got = await waitFor(
        () => entries(stream, projectId),
        (e) => e.length >= expected.length,
        'the events on the stream',
      );
      expect(got.map((e) => e.type)).toEqual(expected);
      const byType = Object.fromEntries(got.map((e) => [e.type, e.event])) as Record<string, AuditEvent>;
      const apiKeyActor = { type: 'api_key', id: apiKeyId };

      for (const e of got) {
        expect(Object.keys(e.event)).toEqual([
          'id',
          'version',
          'type',
          'occurred_at',
          'project_id',
          'webhook_id',
          'actor',
          'request_id',
          'data',
        ]);
        expect(e.event.id).toMatch(/^aud_/);
        expect(e.event.id.slice(4)).toMatch(ULID);
        expect(e.event.version).toBe(1);
        expect(e.event.type).toBe(e.type);
        expect(e.event.project_id).toBe(projectId);
        expect(e.event.occurred_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
        expect(e.raw.filter((_, i) => i % 2 === 0)).toEqual(['type', 'project_id', 'event']);
        // The documented order inside the envelope too, which jsonb storage does not keep.
        expect(Object.keys(e.event.actor)).toEqual(['type', 'id']);
      }
      expect(byType['api_key.created']).toMatchObject({
        webhook_id: null,
        actor: { type: 'admin', id: 'test' },
        request_id: null,
        data: { api_key_id: apiKeyId, name: 'test' },
      });
      expect(byType['webhook.created']).toMatchObject({
        webhook_id: id,
        actor: apiKeyActor,
        request_id: 'req-create',
        data: {
          // The query (a receiver's own token) is never recorded.
          url: 'https://hooks.example.com/anchor?[redacted]',
          description: 'first',
          subscribed_events: ['task.completed'],
          enabled: true,
          fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
        },
      });
      fingerprints.push(byType['webhook.created'].data as { fingerprint: string });
      expect(byType['webhook.updated']).toMatchObject({
        webhook_id: id,
        actor: apiKeyActor,
        request_id: 'req-patch',
        data: {
          changes: [
            {
              field: 'url',
              from: 'https://hooks.example.com/anchor?[redacted]',
              to: 'https://hooks.example.com/moved?[redacted]',
            },
            { field: 'description', from: 'first', to: 'second' },
            { field: 'subscribed_events', from: ['task.completed'], to: ['task.completed', 'task.failed'] },
            { field: 'enabled', from: true, to: false },
          ],
        },
      });
      expect(byType['webhook.secret.rotated']).toMatchObject({
        webhook_id: id,
        actor: apiKeyActor,
        request_id: 'req-rotate',
        data: {
          trigger: 'manual',
          fingerprint: expect.stringMatching(/^sha256:/),
          previous_fingerprint: fingerprints[0].fingerprint,
          previous_expires_at: expect.any(String),
        },
      });
      expect(Object.keys(byType['webhook.secret.rotated'].data)).toEqual([
        'trigger',
        'fingerprint',
        'previous_fingerprint',
        'previous_expires_at',
      ]);
      for (const change of (byType['webhook.updated'].data as { changes: object[] }).changes)
        expect(Object.keys(change)).toEqual(['field', 'from', 'to']);
      expect(byType['webhook.url_rejected']).toMatchObject({
        webhook_id: id,
        actor: apiKeyActor,
        request_id: 'req-reject',
        data: {
          operation: 'update',
          host: '127.0.0.1',
          rule: 'private_address',
          rules: ['private_address'],
        },
      });
      expect(JSON.stringify(byType['webhook.url_rejected'])).not.toContain('topsecret');
      expect(got[2].event).toMatchObject({
        type: 'webhook.url_rejected',
        webhook_id: null,
        actor: apiKeyActor,
        request_id: 'req-refused',
        data: {
          operation: 'create',
          host: 'localhost',
          rule: 'internal_name',
          rules: ['internal_name', 'single_label'],
        },
      });
      expect(JSON.stringify(got[2].event)).not.toContain('token=refused');
      expect(byType['webhook.secret.previous_expired']).toMatchObject({
        webhook_id: id,
        actor: { type: 'system', id: 'housekeeping' },
        data: { fingerprint: fingerprints[0].fingerprint },
      });
      expect(byType['webhook.deleted']).toMatchObject({
        webhook_id: id,
        actor: apiKeyActor,
        request_id: 'req-delete',
        data: { secrets_destroyed: 1 },
      });

      // The stream carries exactly what Postgres holds, and every row is marked published.
      expect(got.map((e) => e.event)).toEqual(
        (await dbEvents(api.db, projectId)).map((e) => expect.objectContaining({ ...e })),
      );
      // The relay marks rows published right after it has added them to the stream: soon, not at once.
      await waitFor(
        () => unpublishedCount(api.db, projectId),
        (n) => n === 0,
        'every row marked published',
      );
    });

    it('records api_key.created and api_key.revoked with the admin actor for the CLI', async () => {
      const projectId = randomUUID();
      const created = await withEnv({ AUDIT_STREAM: stream }, () =>
        cli(['api-keys', 'create', '--project', projectId, '--name', 'ci']),
      );
      secretsSeen.add(String(created.api_key));
      await withEnv({ AUDIT_STREAM: stream }, () => cli(['api-keys', 'revoke', String(created.api_key_id)]));
      // The CLI has no Redis: its events go out with the relay's poller.
      const got = await waitFor(
        () => entries(stream, projectId),
        (e) => e.length >= 2,
        'the CLI key events',
      );
      expect(got.map((e) => [e.type, e.event.actor, e.event.data])).toEqual([
        ['api_key.created', { type: 'admin', id: 'cli' }, { api_key_id: created.api_key_id, name: 'ci' }],
        ['api_key.revoked', { type: 'admin', id: 'cli' }, { api_key_id: created.api_key_id }],
      ]);
    });

    it('blanks an API key or a secret that a client pasted into a URL, a description or a refused host', async () => {
      const { key, projectId } = await api.newKey();
      secretsSeen.add(key);
      const created = await api.http.post('/v1/webhooks', {
        key,
        body: { ...valid, url: `https://hooks.example.com/in/${key}/x`, description: `key ${key} here` },
      });
      expect(created.status).toBe(201);
      const secret = created.body.secret as string;
      secretsSeen.add(secret);
      const id = created.body.id as string;
      // The webhook itself keeps what the client sent: only the audit record is blanked.
      expect(created.body.url).toBe(`https://hooks.example.com/in/${key}/x`);
      const encoded = encodeURIComponent(key).replace(/_/g, '%5F');
      const patched = await api.http.patch(`/v1/webhooks/${id}`, {
        key,
        body: { url: `https://hooks.example.com/${secret}/in/${encoded}`, description: secret },
      });
      expect(patched.status).toBe(200);
      const refused = await api.http.post('/v1/webhooks', {
        key,
        body: { ...valid, url: `https://${key.toLowerCase()}/` },
      });
      expect(refused.status).toBe(400);
      const webhookEvents = async () =>
        (await entries(stream, projectId)).filter((e) => e.type.startsWith('webhook.'));
      const got = await waitFor(webhookEvents, (e) => e.length >= 3, 'the three webhook events');
      expect(got.map((e) => [e.type, e.event.data])).toEqual([
        [
          'webhook.created',
          expect.objectContaining({
            url: 'https://hooks.example.com/in/[redacted]/x',
            description: 'key [redacted] here',
          }),
        ],
        [
          'webhook.updated',
          {
            changes: [
              {
                field: 'url',
                from: 'https://hooks.example.com/in/[redacted]/x',
                to: 'https://hooks.example.com/[redacted]/in/[redacted]',
              },
              { field: 'description', from: 'key [redacted] here', to: '[redacted]' },
            ],
          },
        ],
        ['webhook.url_rejected', expect.objectContaining({ host: '[redacted]', rule: 'single_label' })],
      ]);
      // An operator's key name that quotes a key, from the CLI (its events go out with the relay's poller).
      const named = await withEnv({ AUDIT_STREAM: stream }, () =>
        cli(['api-keys', 'create', '--project', projectId, '--name', `replaces ${key}`]),
      );
      secretsSeen.add(String(named.api_key));
      const keyEvents = await waitFor(
        async () =>
          (await entries(stream, projectId)).filter(
            (e) => (e.event.data as { api_key_id?: unknown }).api_key_id === named.api_key_id,
          ),
        (e) => e.length >= 1,
        'the CLI key event',
      );
      expect(keyEvents.map((e) => e.event.data)).toEqual([
        { api_key_id: named.api_key_id, name: 'replaces [redacted]' },
      ]);
      const text = [...got, ...keyEvents].map((e) => e.raw.join('\n')).join('\n');
      expect(text.includes(key)).toBe(false);
      expect(text.includes(key.toLowerCase())).toBe(false);
      expect(text.includes(secret)).toBe(false);
    });

    it('is woken by the commit, not by the poller: with the polling stopped, every change still reaches the stream', async () => {
      // The poll jobs wait in the queue while this worker's processor is paused; a wake-up runs the relay itself.
      const polling = worker.get(AuditRelayProcessor).worker;
      await polling.pause();
      try {
        // A run the poller started before the pause is over once this resolves.
        await worker.get(AuditRelayService).drain();
        const { key, projectId } = await api.newKey();
        const created = await api.http.post('/v1/webhooks', { key, body: valid });
        secretsSeen.add(created.body.secret);
        for (let i = 0; i < 20; i++) {
          await api.http.patch(`/v1/webhooks/${created.body.id}`, { key, body: { description: `d${i}` } });
        }
        const got = await waitFor(
          () => entries(stream, projectId),
          (e) => e.length >= 22,
          'the patches, relayed on the wake-ups alone',
        );
        expect(got.map((e) => e.type)).toEqual([
          'api_key.created',
          'webhook.created',
          ...Array<string>(20).fill('webhook.updated'),
        ]);
      } finally {
        polling.resume();
      }
    });

    it('audit tail prints one JSON event per line and stops cleanly on SIGINT', async () => {
      const lines: string[] = [];
      const signals = new EventEmitter();
      const config = withEnv({ AUDIT_STREAM: stream }, () => loadConfig());
      const tail = auditCommand(config, ['tail', '--from-start'], (l) => lines.push(l), signals);
      const { key, projectId } = await api.newKey();
      await waitFor(
        async () => lines.map((l) => JSON.parse(l) as AuditEvent).filter((e) => e.project_id === projectId),
        (e) => e.length === 1,
        'the tail to print the new key event',
      );
      expect(lines.length).toBeGreaterThan(1);
      for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
      signals.emit('SIGINT');
      await tail;
      // The throwaway group is gone.
      const groups = (await redis.xinfo('GROUPS', stream)) as unknown[];
      expect(groups).toHaveLength(0);
      secretsSeen.add(key);
    });

    it('audit tail stops cleanly on SIGHUP (its terminal closed) and leaves no throwaway group behind', async () => {
      const signals = new EventEmitter();
      const config = withEnv({ AUDIT_STREAM: stream }, () => loadConfig());
      const groupsOf = async () => (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[];
      const before = (await groupsOf()).length;
      const tail = auditCommand(config, ['tail'], () => undefined, signals);
      await waitFor(groupsOf, (g) => g.length === before + 1, 'the tail to create its group');
      signals.emit('SIGHUP');
      // Without a SIGHUP handler the process would die by default and its group stay on the stream for ever.
      const stopped = await Promise.race([
        tail.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000)),
      ]);
      if (!stopped) signals.emit('SIGINT');
      await tail;
      expect(stopped).toBe(true);
      expect(await groupsOf()).toHaveLength(before);
    });

    it('the audit housekeeping removes the groups of tails killed outright, and nothing else', async () => {
      const signals = new EventEmitter();
      const config = withEnv({ AUDIT_STREAM: stream }, () => loadConfig());
      const namesOf = async () =>
        ((await redis.xinfo('GROUPS', stream)) as unknown[][]).map((g) => String(g[g.indexOf('name') + 1]));
      // What a tail killed by SIGKILL leaves: its throwaway group, with its consumer, and no heartbeat any more.
      const killed = throwawayTailGroup();
      await redis.xgroup('CREATE', stream, killed, '$', 'MKSTREAM');
      await redis.xreadgroup('GROUP', killed, 'tail', 'COUNT', 1, 'STREAMS', stream, '>');
      // A durable group just as quiet: it stays.
      const durable = `ops-${randomUUID()}`;
      await redis.xgroup('CREATE', stream, durable, '$');
      await redis.xreadgroup('GROUP', durable, 'ops-1', 'COUNT', 1, 'STREAMS', stream, '>');
      // A tail that is running, on a stream where nothing happens: its consumer looks idle, its heartbeat says not.
      const before = await namesOf();
      const lines: string[] = [];
      const tail = auditCommand(config, ['tail'], (l) => lines.push(l), signals);
      const live = (
        await waitFor(namesOf, (n) => n.length === before.length + 1, 'the tail to create its group')
      ).find((n) => !before.includes(n)) as string;
      try {
        expect(await redis.pttl(tailHeartbeatKey(stream, live))).toBeGreaterThan(0);
        const job = { name: JobName.AuditPurge, data: {} } as Job;
        // (The worker's own daily run could have come first, should the test run at that very minute.)
        expect(await worker.get(HousekeepingProcessor).process(job)).toMatchObject({
          abandonedTailGroups: expect.any(Number),
        });
        const left = await namesOf();
        expect(left).not.toContain(killed);
        expect(left).toEqual(expect.arrayContaining([durable, live]));
        // The running tail still prints what happens.
        const { key, projectId } = await api.newKey();
        secretsSeen.add(key);
        await waitFor(
          async () => lines.filter((l) => (JSON.parse(l) as AuditEvent).project_id === projectId),
          (e) => e.length === 1,
          'the tail to print the new key event',
        );
      } finally {
        signals.emit('SIGINT');
        await tail;
        await redis.xgroup('DESTROY', stream, durable);
      }
      // Stopped cleanly, it leaves neither its group nor its heartbeat.
      expect(await namesOf()).not.toContain(live);
      expect(await redis.exists(tailHeartbeatKey(stream, live))).toBe(0);
      // The reserved names cannot be taken for a durable group.
      await expect(
        auditCommand(config, ['tail', '--group', killed], () => undefined, signals),
      ).rejects.toThrow(/reserved for throwaway groups/);
    });

    it('audit tail --consumer: two tails of one group on one host are consumers of their own, each event printed once', async () => {
      const config = withEnv({ AUDIT_STREAM: stream }, () => loadConfig());
      const group = `ops-${randomUUID()}`;
      const consumersOf = async () =>
        ((await redis.xinfo('CONSUMERS', stream, group).catch(() => [])) as unknown[][]).map((c) =>
          String(c[c.indexOf('name') + 1]),
        );
      const tails = ['east', 'west'].map((consumer) => {
        const lines: string[] = [];
        const signals = new EventEmitter();
        const done = auditCommand(
          config,
          ['tail', '--group', group, '--consumer', consumer],
          (l) => lines.push(l),
          signals,
        );
        return { lines, signals, done };
      });
      try {
        await waitFor(consumersOf, (c) => c.length === 2, 'both tails to join the group');
        expect((await consumersOf()).sort()).toEqual(['east', 'west']);
        const projects = new Set<string>();
        for (let i = 0; i < 10; i++) {
          const { key, projectId } = await api.newKey();
          secretsSeen.add(key);
          projects.add(projectId);
        }
        const printed = await waitFor(
          async () =>
            tails
              .flatMap((t) => t.lines)
              .map((l) => JSON.parse(l) as AuditEvent)
              .filter((e) => projects.has(e.project_id)),
          (e) => e.length >= 10,
          'the tails to print the ten key events',
        );
        expect(printed).toHaveLength(10);
        expect(new Set(printed.map((e) => e.id)).size).toBe(10);
      } finally {
        for (const t of tails) t.signals.emit('SIGINT');
        await Promise.all(tails.map((t) => t.done));
      }
      // Nothing left pending, and no consumer under the host's default name.
      expect((await consumersOf()).sort()).toEqual(['east', 'west']);
      const pending = (await redis.xpending(stream, group)) as [number, ...unknown[]];
      expect(pending[0]).toBe(0);
      await redis.xgroup('DESTROY', stream, group);
    });

    it('audit tail --group whose reader has gone acknowledges nothing it could not print: the next tail prints it', async () => {
      execFileSync(process.execPath, [join(__dirname, '..', 'scripts/build-if-needed.mjs')], {
        stdio: 'inherit',
      });
      const config = withEnv({ AUDIT_STREAM: stream }, () => loadConfig());
      const group = `ops-${randomUUID()}`;
      const { key, projectId } = await api.newKey();
      secretsSeen.add(key);
      await waitFor(
        () => entries(stream, projectId),
        (e) => e.length === 1,
        'the key event on the stream',
      );
      // The compiled CLI, as `… audit tail --group ops | head -1` runs it, with the reader gone before it prints.
      const child = spawn(
        process.execPath,
        [
          join(__dirname, '..', 'dist/apps/cli/src/main.js'),
          'audit',
          'tail',
          '--group',
          group,
          '--consumer',
          'gone',
          '--from-start',
        ],
        { env: { ...process.env, AUDIT_STREAM: stream }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        // A hang guard only: the tail stops by itself on its first failed write.
        const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', (c) => {
          clearTimeout(guard);
          resolve(c);
        });
      });
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      // It read one batch, printed none of it, and acknowledged none of it.
      const info = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      const own = info.find((g) => g[g.indexOf('name') + 1] === group)!;
      const lastDelivered = String(own[own.indexOf('last-delivered-id') + 1]);
      const delivered = (await redis.xrange(stream, '-', lastDelivered)).map(([id]) => id);
      expect(delivered.length).toBeGreaterThan(0);
      const pending = (await redis.xpending(stream, group)) as [number, ...unknown[]];
      expect(pending[0]).toBe(delivered.length);
      // The group's next tail under the same consumer prints every one of them, first.
      const lines: string[] = [];
      const signals = new EventEmitter();
      const next = auditCommand(
        config,
        ['tail', '--group', group, '--consumer', 'gone'],
        (l) => lines.push(l),
        signals,
      );
      try {
        await waitFor(
          async () => lines.length,
          (n) => n >= delivered.length,
          'the next tail to print them',
        );
      } finally {
        signals.emit('SIGINT');
        await next;
      }
      const byEntry = new Map((await entries(stream)).map((e) => [e.entryId, e.event.id]));
      expect(lines.slice(0, delivered.length).map((l) => (JSON.parse(l) as AuditEvent).id)).toEqual(
        delivered.map((id) => byEntry.get(id)),
      );
      expect(((await redis.xpending(stream, group)) as [number])[0]).toBe(0);
      await redis.xgroup('DESTROY', stream, group);
    });
  });

  describe('audit tail without Redis', () => {
    it('fails with a clear error instead of waiting silently', async () => {
      const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
      proxy.cut();
      try {
        const config = withEnv({ REDIS_URL: proxy.rewrite(TEST_REDIS_URL) }, () => loadConfig());
        await expect(auditCommand(config, ['tail'], () => undefined, new EventEmitter())).rejects.toThrow(
          /Redis is unavailable/,
        );
      } finally {
        await proxy.stop();
      }
    });
  });

  describe('Redis unavailable while 200 changes are made', () => {
    it('keeps answering, then delivers all 200 events in order per webhook once Redis is back', async () => {
      const stream = newStream();
      const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
      const env = { AUDIT_STREAM: stream, REDIS_URL: proxy.rewrite(TEST_REDIS_URL) };
      const api = await bootApi(env);
      const worker = await bootWorker(env);
      try {
        const { key, projectId } = await api.newKey();
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const res = await api.http.post('/v1/webhooks', { key, body: valid });
          expect(res.status).toBe(201);
          secretsSeen.add(res.body.secret);
          ids.push(res.body.id);
        }
        await waitFor(
          () => entries(stream, projectId),
          (e) => e.length === 6,
          'the creates',
        );

        proxy.cut();
        const statuses = await Promise.all(
          ids.map(async (id) => {
            const s: number[] = [];
            for (let n = 0; n < 40; n++) {
              const res = await api.http.patch(`/v1/webhooks/${id}`, { key, body: { description: `v${n}` } });
              s.push(res.status);
            }
            return s;
          }),
        );
        expect(statuses.flat()).toEqual(new Array(200).fill(200));
        // Nothing reached the stream; everything waits in the outbox.
        expect(await entries(stream, projectId)).toHaveLength(6);
        // What /metrics reports as audit_outbox_pending and audit_relay_lag_seconds.
        const backlog = await api.db.repos.metrics.outboxBacklog();
        expect(backlog.pending).toBeGreaterThanOrEqual(200);
        expect(backlog.oldestOccurredAt).toBeInstanceOf(Date);

        proxy.restore();
        const got = await waitFor(
          () => entries(stream, projectId),
          (e) => e.length >= 206,
          'the backlog after Redis returned',
          30_000,
        );
        const updates = got.filter((e) => e.type === 'webhook.updated');
        expect(updates).toHaveLength(200);
        expect(new Set(updates.map((e) => e.event.id)).size).toBe(200);
        for (const id of ids) {
          const seen = updates
            .filter((e) => e.event.webhook_id === id)
            .map((e) => (e.event.data as { changes: { to: string }[] }).changes[0].to);
          expect(seen).toEqual(Array.from({ length: 40 }, (_, n) => `v${n}`));
        }
      } finally {
        await worker.close();
        await api.close();
        await proxy.stop();
      }
    });
  });

  describe('a relay that dies between XADD and marking published', () => {
    it('republishes after the restart: nothing missing, duplicates carry the same id', async () => {
      const stream = newStream();
      const api = await bootApi({ AUDIT_STREAM: stream });
      try {
        const { key, projectId } = await api.newKey();
        const created = await api.http.post('/v1/webhooks', { key, body: valid });
        secretsSeen.add(created.body.secret);
        for (let n = 0; n < 30; n++) {
          await api.http.patch(`/v1/webhooks/${created.body.id}`, { key, body: { description: `c${n}` } });
        }
        // The first relay run publishes and "crashes" before marking; the module is torn down like a killed
        // process, and a fresh worker takes over.
        let crashing: CrashingPublisher | undefined;
        const first = await bootWorker(
          { AUDIT_STREAM: stream },
          (r, c) => (crashing = new CrashingPublisher(r, c, 1000)),
        );
        await waitFor(
          async () => crashing?.calls ?? 0,
          (n) => n >= 1,
          'the first relay attempt',
        );
        await first.close();
        const dupes = await entries(stream, projectId);
        expect(dupes.length).toBeGreaterThanOrEqual(32);

        const second = await bootWorker({ AUDIT_STREAM: stream });
        try {
          const all = await waitFor(
            async () => ({
              stream: await entries(stream, projectId),
              unpublished: await unpublishedCount(api.db, projectId),
            }),
            (s) => s.unpublished === 0,
            'the restarted relay',
          );
          const rows = await dbEvents(api.db, projectId);
          const byId = new Map<string, string>();
          for (const e of all.stream) {
            const json = JSON.stringify(e.event);
            if (byId.has(e.event.id)) expect(json).toBe(byId.get(e.event.id));
            byId.set(e.event.id, json);
          }
          expect([...byId.keys()].sort()).toEqual(rows.map((r) => r.id).sort());
          expect(all.stream.length).toBeGreaterThan(rows.length);
          // Order per webhook holds for the first occurrence of each id.
          const firstSeen = [...byId.keys()];
          expect(firstSeen).toEqual(rows.map((r) => r.id));
        } finally {
          await second.close();
        }
      } finally {
        await api.close();
      }
    });

    // The compiled worker, killed for real; built first when the checkout has not been built yet.
    const compiledWorker = join(__dirname, '..', 'dist/apps/worker/src/main.js');
    it('a worker killed with SIGKILL mid-relay: after a restart nothing is missing, duplicates share their id', async () => {
      execFileSync(process.execPath, [join(__dirname, '..', 'scripts/build-if-needed.mjs')], {
        stdio: 'inherit',
      });
      const stream = newStream();
      const api = await bootApi({ AUDIT_STREAM: stream });
      const spawnWorker = (): ChildProcess => {
        const child = spawn(process.execPath, [compiledWorker], {
          env: { ...process.env, AUDIT_STREAM: stream, LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout?.on('data', (d: Buffer) => logLines.push(d.toString()));
        child.stderr?.on('data', (d: Buffer) => logLines.push(d.toString()));
        return child;
      };
      const exited = (child: ChildProcess) =>
        new Promise<void>((resolve) =>
          child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
        );
      try {
        const projectId = randomUUID();
        // A deep outbox, so the kill lands while batches are in flight.
        await api.db.dataSource.query(
          `INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
             SELECT 'aud_K' || lpad(n::text, 25, '0'), $1::uuid, 'wh_KILL', 'webhook.updated', now(),
                    jsonb_build_object('id', 'aud_K' || lpad(n::text, 25, '0'), 'version', 1,
                      'type', 'webhook.updated', 'occurred_at', to_char(now() AT TIME ZONE 'UTC',
                      'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'project_id', $1::text, 'webhook_id', 'wh_KILL',
                      'actor', jsonb_build_object('type', 'system', 'id', 'test'), 'request_id', null,
                      'data', jsonb_build_object('changes', jsonb_build_array(
                        jsonb_build_object('field', 'description', 'from', null, 'to', n::text))))
             FROM generate_series(1, 30000) AS n`,
          [projectId],
        );
        const first = spawnWorker();
        await waitFor(
          async () => redis.xlen(stream).catch(() => 0),
          (n) => n > 0,
          'the relay to start publishing',
          30_000,
        );
        first.kill('SIGKILL');
        await exited(first);
        const unpublishedAfterKill = await unpublishedCount(api.db, projectId);
        expect(unpublishedAfterKill).toBeGreaterThan(0);

        const second = spawnWorker();
        try {
          await waitFor(
            () => unpublishedCount(api.db, projectId),
            (n) => n === 0,
            'the restarted worker to drain the outbox',
            60_000,
          );
        } finally {
          second.kill('SIGTERM');
          await exited(second);
        }
        const got = await entries(stream, projectId);
        const firstJson = new Map<string, string>();
        for (const e of got) {
          const json = JSON.stringify(e.event);
          if (firstJson.has(e.event.id)) expect(json).toBe(firstJson.get(e.event.id));
          else firstJson.set(e.event.id, json);
        }
        // Nothing missing, and the first publication of each event is in commit order.
        const ids = [...firstJson.keys()];
        expect(ids).toHaveLength(30000);
        expect(ids).toEqual([...ids].sort());
      } finally {
        await api.close();
      }
    }, 120_000);

    it('several relays at once neither duplicate nor reorder', async () => {
      const stream = newStream();
      const api = await bootApi({ AUDIT_STREAM: stream });
      const workers = await Promise.all([1, 2, 3].map(() => bootWorker({ AUDIT_STREAM: stream })));
      try {
        const { key, projectId } = await api.newKey();
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const res = await api.http.post('/v1/webhooks', { key, body: valid });
          secretsSeen.add(res.body.secret);
          ids.push(res.body.id);
        }
        await Promise.all(
          ids.map(async (id) => {
            for (let n = 0; n < 30; n++)
              await api.http.patch(`/v1/webhooks/${id}`, { key, body: { description: `p${n}` } });
          }),
        );
        // Every relay is asked at once too.
        await Promise.all(workers.map((w) => w.get(AuditRelayService).drain()));
        const got = await waitFor(
          () => entries(stream, projectId),
          (e) => e.length >= 94,
          'all events',
        );
        const rows = await dbEvents(api.db, projectId);
        expect(got.map((e) => e.event.id).sort()).toEqual(rows.map((r) => r.id).sort());
        // Commit order within each webhook (rows of different webhooks may interleave either way).
        for (const id of ids) {
          expect(got.filter((e) => e.event.webhook_id === id).map((e) => e.event.id)).toEqual(
            rows.filter((r) => r.webhook_id === id).map((r) => r.id),
          );
        }
      } finally {
        await Promise.all(workers.map((w) => w.close()));
        await api.close();
      }
    });
  });

  describe('subscriber', () => {
    it('acknowledges after the handler; a crashed consumer’s pending entries are reclaimed by another', async () => {
      const stream = newStream();
      const api = await bootApi({ AUDIT_STREAM: stream });
      const worker = await bootWorker({ AUDIT_STREAM: stream });
      const connA = new Redis(TEST_REDIS_URL);
      const connB = new Redis(TEST_REDIS_URL);
      try {
        const group = 'compliance';
        const a = new AuditStreamSubscriber(connA, {
          stream,
          group,
          consumer: 'a',
          startId: '0',
          blockMs: 100,
        });
        const b = new AuditStreamSubscriber(connB, {
          stream,
          group,
          consumer: 'b',
          startId: '0',
          blockMs: 100,
          minIdleMs: 0,
        });
        await a.ensureGroup();
        const { projectId } = await api.newKey();
        await api.newKey(projectId);
        await waitFor(
          () => entries(stream, projectId),
          (e) => e.length === 2,
          'two events',
        );

        // Consumer a reads and dies before acknowledging (its handler never succeeds).
        const seenByA: string[] = [];
        await a.readNew((e) => {
          seenByA.push(e.id);
          throw new Error('consumer a crashed');
        });
        expect(seenByA.length).toBeGreaterThanOrEqual(2);
        const pending = (await redis.xpending(stream, group)) as [number, ...unknown[]];
        expect(pending[0]).toBe(seenByA.length);

        // Consumer b takes them over and acknowledges them.
        const seenByB: AuditEvent[] = [];
        expect(await b.reclaim((e) => void seenByB.push(e))).toBe(seenByA.length);
        expect(seenByB.map((e) => e.id)).toEqual(seenByA);
        expect(((await redis.xpending(stream, group)) as [number])[0]).toBe(0);

        // A republished event (same id, new entry) is acknowledged without a second handler call.
        const [again] = await entries(stream, projectId);
        await redis.xadd(
          stream,
          '*',
          'type',
          again.type,
          'project_id',
          projectId,
          'event',
          JSON.stringify(again.event),
        );
        const dup: AuditEvent[] = [];
        await b.readNew((e) => void dup.push(e));
        expect(dup).toEqual([]);
        expect(((await redis.xpending(stream, group)) as [number])[0]).toBe(0);
      } finally {
        connA.disconnect();
        connB.disconnect();
        await worker.close();
        await api.close();
      }
    });

    it('reads again at once the entries of a read whose answer was lost with its connection', async () => {
      const stream = newStream();
      const proxy = await TcpProxy.inFrontOf(TEST_REDIS_URL);
      // ioredis as a subscriber would create it: it sends an unanswered command again once it reconnects.
      const conn = new Redis(proxy.rewrite(TEST_REDIS_URL));
      conn.on('error', () => undefined);
      const handled: string[] = [];
      const subscriber = new AuditStreamSubscriber(conn, {
        stream,
        group: 'compliance',
        consumer: 'c',
        startId: '0',
        blockMs: 200,
        // No taking over of pending entries within the test: only the consumer itself can find them again.
        minIdleMs: 3_600_000,
      });
      const running = subscriber.run((e) => void handled.push(e.id));
      try {
        await redis.xadd(stream, '*', 'event', JSON.stringify({ id: 'aud_before' }));
        await eventually(() => handled.length === 1, 15_000, 'the subscriber reading');
        // Redis hands the entry to the consumer, and the answer is lost with its connection.
        proxy.loseAnswerHolding('aud_lost_answer');
        await redis.xadd(stream, '*', 'event', JSON.stringify({ id: 'aud_lost_answer' }));
        await eventually(() => handled.length === 2, 15_000, 'the entry of the lost answer handled');
        expect(handled).toEqual(['aud_before', 'aud_lost_answer']);
        expect(((await redis.xpending(stream, 'compliance')) as [number])[0]).toBe(0);
      } finally {
        subscriber.stop();
        await running;
        conn.disconnect();
        await proxy.stop();
      }
    });

    it('reports entries trimmed while pending when it takes them over, and leaves none pending', async () => {
      const stream = newStream();
      const conn = new Redis(TEST_REDIS_URL);
      try {
        const group = 'compliance';
        for (let i = 0; i < 5; i++)
          await redis.xadd(stream, '*', 'event', JSON.stringify({ id: `aud_trim_${i}` }));
        await redis.call('XGROUP', 'CREATE', stream, group, '0');
        // A consumer reads all five and dies; the cap then trims the three oldest away.
        await redis.call('XREADGROUP', 'GROUP', group, 'dead', 'COUNT', 10, 'STREAMS', stream, '>');
        const ids = ((await redis.xrange(stream, '-', '+')) as [string, string[]][]).map(([id]) => id);
        await redis.xtrim(stream, 'MAXLEN', 2);

        const reported: (string | undefined)[] = [];
        const handled: string[] = [];
        const b = new AuditStreamSubscriber(conn, {
          stream,
          group,
          consumer: 'b',
          minIdleMs: 0,
          onError: (_e, entry) => reported.push(entry?.entryId),
        });
        await b.reclaim((e) => void handled.push(e.id));
        expect(handled).toEqual(['aud_trim_3', 'aud_trim_4']);
        expect(reported).toEqual(ids.slice(0, 3));
        expect(((await redis.xpending(stream, group)) as [number])[0]).toBe(0);
      } finally {
        conn.disconnect();
      }
    });
  });

  describe('GET /v1/audit-events', () => {
    let api: Api;
    let key: string;
    let projectId: string;
    let hookA: string;
    let hookB: string;

    beforeAll(async () => {
      api = await bootApi({ AUDIT_STREAM: newStream() });
      ({ key, projectId } = await api.newKey());
      for (const description of ['a', 'b']) {
        const res = await api.http.post('/v1/webhooks', { key, body: { ...valid, description } });
        secretsSeen.add(res.body.secret);
        if (description === 'a') hookA = res.body.id;
        else hookB = res.body.id;
      }
      for (let n = 0; n < 10; n++) {
        await api.http.patch(`/v1/webhooks/${n % 2 ? hookB : hookA}`, {
          key,
          body: { description: `n${n}` },
        });
      }
      const rot = await api.http.post(`/v1/webhooks/${hookA}/rotate-secret`, { key });
      secretsSeen.add(rot.body.secret);
    });
    afterAll(() => api.close());

    const list = (query: string, k = key) => api.http.get(`/v1/audit-events${query}`, { key: k });

    it('lists the project’s events newest first, exactly as stored', async () => {
      const res = await list('');
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['events', 'next_cursor']);
      expect(res.body.next_cursor).toBeNull();
      const rows = await dbEvents(api.db, projectId);
      expect(res.body.events).toEqual([...rows].reverse());
      expect(res.body.events[0].type).toBe('webhook.secret.rotated');
      expect(Object.keys(res.body.events[0].actor)).toEqual(['type', 'id']);
      expect(Object.keys(res.body.events[0].data).slice(0, 4)).toEqual([
        'trigger',
        'fingerprint',
        'previous_fingerprint',
        'previous_expires_at',
      ]);
      expect(res.body.events.at(-1).type).toBe('api_key.created');
    });

    it('pages with an opaque cursor, without gaps or repeats', async () => {
      const all = (await list('')).body.events.map((e: AuditEvent) => e.id);
      const paged: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: { status: number; body: { events: AuditEvent[]; next_cursor: string | null } } =
          await list(`?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        expect(res.body.events.length).toBeLessThanOrEqual(4);
        paged.push(...res.body.events.map((e) => e.id));
        cursor = res.body.next_cursor;
        if (cursor) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        pages++;
      } while (cursor);
      expect(paged).toEqual(all);
      expect(pages).toBe(Math.ceil(all.length / 4));
    });

    it('filters by webhook, type and time range (inclusive)', async () => {
      const byHook = (await list(`?webhook_id=${hookB}`)).body.events as AuditEvent[];
      expect(byHook.length).toBe(6);
      expect(byHook.every((e) => e.webhook_id === hookB)).toBe(true);
      expect(byHook.map((e) => e.type)).toEqual([...Array(5).fill('webhook.updated'), 'webhook.created']);
      const updates = (await list('?type=webhook.updated')).body.events as AuditEvent[];
      expect(updates.map((e) => e.type)).toEqual(Array(10).fill('webhook.updated'));
      const both = (await list(`?type=webhook.updated&webhook_id=${hookA}`)).body.events as AuditEvent[];
      // Updates n0, n2, ... n8 went to hook A; newest first.
      expect(both.map((e) => [e.type, e.webhook_id, e.data])).toEqual(
        [8, 6, 4, 2, 0].map((n) => [
          'webhook.updated',
          hookA,
          { changes: [{ field: 'description', from: n === 0 ? 'a' : `n${n - 2}`, to: `n${n}` }] },
        ]),
      );
      const all = (await list('')).body.events as AuditEvent[];
      const mid = all[5].occurred_at;
      const since = (await list(`?since=${mid}`)).body.events as AuditEvent[];
      expect(since.every((e) => e.occurred_at >= mid)).toBe(true);
      expect(since.map((e) => e.id)).toContain(all[5].id);
      const until = (await list(`?until=${encodeURIComponent(mid)}`)).body.events as AuditEvent[];
      expect(until.every((e) => e.occurred_at <= mid)).toBe(true);
      expect(until.map((e) => e.id)).toContain(all[5].id);
      // An offset form of the same instant means the same thing.
      const offset = new Date(Date.parse(mid)).toISOString().replace('Z', '+00:00');
      expect((await list(`?since=${encodeURIComponent(offset)}`)).body.events).toEqual(since);
      expect((await list('?since=2999-01-01T00:00:00Z')).body.events).toEqual([]);
    });

    it.each([
      ['?type=webhook.exploded', 'type', 'one_of'],
      ['?type=webhook.updated&type=webhook.created', 'type', 'type'],
      ['?since=yesterday', 'since', 'rfc3339'],
      ['?since=2026-11-22', 'since', 'rfc3339'],
      ['?until=2026-11-22T10:00:00', 'until', 'rfc3339'],
      ['?until=2026-02-30T10:00:00Z', 'until', 'rfc3339'],
      ['?limit=0', 'limit', 'min'],
      ['?limit=201', 'limit', 'max'],
      ['?limit=1000000', 'limit', 'max'],
      ['?limit=99999999999999999999999999', 'limit', 'max'],
      ['?limit=00000000', 'limit', 'min'],
      ['?limit=ten', 'limit', 'type'],
      ['?limit=1.5', 'limit', 'type'],
      ['?cursor=%%%', 'cursor', 'invalid_cursor'],
      ['?cursor=eyJ0IjoiMjAyNiJ9', 'cursor', 'invalid_cursor'],
      ['?page=2', 'page', 'unknown_field'],
    ])('answers %s with 400 naming %s', async (query, field, rule) => {
      const res = await list(query);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field, rule })]));
    });

    it('reads a limit with leading zeros as the number it spells, however many', async () => {
      const res = await list('?limit=00000000003');
      expect(res.status).toBe(200);
      expect(res.body.events).toHaveLength(3);
    });

    it('says a limit given twice must be given once, rather than that it must be a whole number', async () => {
      const res = await list('?limit=5&limit=6');
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        code: 'validation_failed',
        error: 'limit must be given once',
        details: [{ field: 'limit', rule: 'type', message: 'limit must be given once' }],
      });
    });

    it('gives 50 events a page by default and up to 200 when asked', async () => {
      const { key: k } = await api.newKey();
      const created = await api.http.post('/v1/webhooks', { key: k, body: valid });
      secretsSeen.add(created.body.secret);
      for (let n = 0; n < 59; n++) {
        await api.http.patch(`/v1/webhooks/${created.body.id}`, { key: k, body: { description: `d${n}` } });
      }
      // 61 events: the key, the create, 59 updates.
      const first = await list('', k);
      expect(first.status).toBe(200);
      expect(first.body.events).toHaveLength(50);
      expect(first.body.next_cursor).toEqual(expect.any(String));
      const rest = await list(`?cursor=${first.body.next_cursor}`, k);
      expect(rest.body.events).toHaveLength(11);
      expect(rest.body.next_cursor).toBeNull();
      const whole = await list('?limit=200', k);
      expect(whole.status).toBe(200);
      expect(whole.body.events.map((e: AuditEvent) => e.id)).toEqual(
        [...first.body.events, ...rest.body.events].map((e: AuditEvent) => e.id),
      );
      expect(whole.body.next_cursor).toBeNull();
    });

    it('refuses a tampered cursor, and a cursor reused with other filters', async () => {
      const first = await list('?limit=2');
      const cursor = first.body.next_cursor as string;
      const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { s: string };
      const forged = Buffer.from(JSON.stringify({ ...decoded, s: String(Number(decoded.s) + 1) })).toString(
        'base64url',
      );
      expect((await list(`?limit=2&cursor=${forged}`)).status).toBe(400);
      const flipped = cursor.slice(0, -2) + (cursor.at(-2) === 'A' ? 'B' : 'A') + cursor.at(-1);
      expect((await list(`?limit=2&cursor=${flipped}`)).status).toBe(400);
      expect((await list(`?limit=2&type=webhook.updated&cursor=${cursor}`)).status).toBe(400);
      expect((await list(`?limit=2&cursor=${cursor}`)).status).toBe(200);
    });

    it('binds a cursor to the instants of since/until, not to their spelling; bounds are inclusive to the ms', async () => {
      const all = (await list('')).body.events as AuditEvent[];
      const oldest = all[all.length - 1].occurred_at; // e.g. 2026-11-30T01:18:00.432Z
      const first = await list(`?limit=1&since=${oldest}`);
      const cursor = first.body.next_cursor as string;
      const sameInstant = oldest.replace('Z', '000+00:00');
      const next = await list(`?limit=1&since=${encodeURIComponent(sameInstant)}&cursor=${cursor}`);
      expect(next.status).toBe(200);
      // A lower bound a microsecond after an event leaves that event out; an upper bound keeps it.
      const justAfter = oldest.replace('Z', '001Z');
      const after = (await list(`?since=${justAfter}`)).body.events as AuditEvent[];
      expect(after.map((e) => e.occurred_at)).not.toContain(oldest);
      const until = (await list(`?until=${justAfter}`)).body.events as AuditEvent[];
      expect(until.map((e) => e.occurred_at)).toContain(oldest);
    });

    it('shows only the caller’s project, and needs a key', async () => {
      const other = await api.newKey();
      const res = await list('', other.key);
      expect(res.status).toBe(200);
      expect(res.body.events.map((e: AuditEvent) => e.type)).toEqual(['api_key.created']);
      expect((await list(`?webhook_id=${hookA}`, other.key)).body.events).toEqual([]);
      // A cursor of one project is refused for another.
      const cursor = (await list('?limit=1')).body.next_cursor as string;
      expect((await list(`?limit=1&cursor=${cursor}`, other.key)).status).toBe(400);
      expect((await api.http.get('/v1/audit-events')).status).toBe(401);
    });
  });

  describe('retention', () => {
    it('purges published events past the retention period in batches, never unpublished ones', async () => {
      const api = await bootApi({ AUDIT_RETENTION_DAYS: '30' });
      try {
        const config = withEnv({ AUDIT_RETENTION_DAYS: '30' }, () => loadConfig());
        const retention = new AuditRetentionService(api.db, new ManualClock(), config);
        // Suites that ran before this one may have left events of their own past the period: purge them first.
        await retention.purge();
        const projectId = randomUUID();
        const old = new Date(Date.now() - 31 * 86_400_000);
        const recent = new Date(Date.now() - 29 * 86_400_000);
        const insert = (n: number, at: Date, published: boolean) =>
          api.db.dataSource.query(
            `INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event, published_at)
             SELECT 'aud_' || md5(random()::text), $1, NULL, 'api_key.created', $2, '{}'::jsonb, $3
             FROM generate_series(1, $4)`,
            [projectId, at, published ? at : null, n],
          );
        await insert(2300, old, true);
        await insert(3, old, false);
        await insert(4, recent, true);
        expect(await retention.purge()).toBe(2300);
        const left: { published: boolean; n: number }[] = await api.db.dataSource.query(
          `SELECT published_at IS NOT NULL AS published, count(*)::int AS n FROM audit_events
           WHERE project_id = $1 GROUP BY 1 ORDER BY 1`,
          [projectId],
        );
        expect(left).toEqual([
          { published: false, n: 3 },
          { published: true, n: 4 },
        ]);
      } finally {
        await api.close();
      }
    });
  });

  // Declared last on purpose: it scans what every test above produced (jest runs a file's tests in order).
  describe('no secret or API key anywhere', () => {
    it('scans every stream entry, every audit row and every log line', async () => {
      expect(secretsSeen.size).toBeGreaterThan(10);
      const dump: string[] = [];
      for (const stream of streamsUsed) {
        if ((await redis.exists(stream)) === 0) continue;
        for (const [, fields] of (await redis.xrange(stream, '-', '+')) as [string, string[]][])
          dump.push(fields.join('\n'));
      }
      const api = await bootApi({});
      try {
        const rows: { row: string }[] = await api.db.dataSource.query(
          'SELECT row_to_json(a)::text AS row FROM audit_events a',
        );
        dump.push(...rows.map((r) => r.row));
      } finally {
        await api.close();
      }
      dump.push(...logLines);
      expect(dump.length).toBeGreaterThan(300);
      const text = dump.join('\n');
      for (const s of secretsSeen) expect(text.includes(s)).toBe(false);
      // No key-shaped or secret-shaped token at all, whatever test produced it.
      expect(text).not.toMatch(/ak_[A-Za-z0-9_-]{43}/);
      expect(text).not.toMatch(/(^|[^0-9a-f])[0-9a-f]{64}([^0-9a-f]|$)/);
    });
  });
});
