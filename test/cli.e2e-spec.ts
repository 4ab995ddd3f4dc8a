import { createHash, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { SecretCipher, idempotentResponseAad } from '@app/domain';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { JobName, QUEUE_PREFIX, QueueName, redisOptionsFromUrl } from '@app/queue';
import { ApiKeyChangeListener, ensureDatabase, runMigrations } from '@app/persistence';
import { runCli } from '../apps/cli/src/main';
import { siblingDatabaseName, withAdmin } from './support/admin-database';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { TcpProxy } from './support/tcp-proxy';
import { TEST_DATABASE_URL, TEST_REDIS_URL, assertTestDatabase } from './support/test-env';

const keyOf = (id: string) => createHash('sha256').update(`cli-test-${id}`).digest().toString('base64');

/**
 * A fresh, migrated database of its own: re-encryption touches every secret of a database, so it must not see
 * what other suites stored (some seed rows under placeholder keys).
 */
async function freshDatabase(name: string): Promise<string> {
  const url = await droppedDatabase(name);
  await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`));
  await runMigrations(url);
  return url;
}

/** The URL of test database `name`, which is dropped first (so it does not exist). */
async function droppedDatabase(name: string): Promise<string> {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  assertTestDatabase(url.toString());
  await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  return url.toString();
}

/** Runs the CLI in-process and captures what it prints. */
async function cli(args: string[], env: Record<string, string> = {}) {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const out: string[] = [];
  const err: string[] = [];
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await runCli(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Runs the CLI as scripts call it, `npm run cli -- …`, in a process of its own with its output on pipes. */
function npm(args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    execFile(
      'npm',
      ['run', 'cli', '--', ...args],
      {
        cwd: join(__dirname, '..'),
        env: { ...process.env, LOG_LEVEL: 'silent' },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? error.code : 0;
        if (typeof code === 'number') resolve({ code, stdout, stderr });
        else reject(new Error(`npm did not run: ${error?.message}`));
      },
    );
  });
}

describe('admin CLI', () => {
  let api: RunningApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  it('api-keys create prints one JSON line, and the key works against the API', async () => {
    const res = await cli(['api-keys', 'create', '--name', 'ci']);
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const created = JSON.parse(lines[0]);
    expect(Object.keys(created).sort()).toEqual(['api_key', 'api_key_id', 'name', 'project_id']);
    expect(created.api_key_id).toMatch(/^key_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(created.project_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.name).toBe('ci');
    expect((await api.http.get('/v1/webhooks', { key: created.api_key })).status).toBe(200);
    const stored = await api.db.dataSource.query('SELECT key_hash FROM api_keys WHERE id = $1', [
      created.api_key_id,
    ]);
    expect(stored[0].key_hash).not.toContain(created.api_key);
    expect(JSON.stringify(await api.db.dataSource.query('SELECT * FROM api_keys'))).not.toContain(
      created.api_key,
    );
  });

  it('through `npm run cli --`, as scripts call it: one JSON line on stdout; an error only on stderr', async () => {
    const created = await npm(['api-keys', 'create', '--name', 'scripted']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^\{[^\n]*\}\n$/);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'scripted' });
    const failed = await npm(['api-keys', 'revoke', 'key_01ARZ3NDEKTSV4RRFFQ69G5FAV']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toContain('key_01ARZ3NDEKTSV4RRFFQ69G5FAV');
  });

  it('api-keys create --project adds a key to an existing project; list shows both, without the keys', async () => {
    const first = JSON.parse((await cli(['api-keys', 'create'])).stdout);
    const second = JSON.parse((await cli(['api-keys', 'create', '--project', first.project_id])).stdout);
    expect(second.project_id).toBe(first.project_id);
    const listed = await cli(['api-keys', 'list', '--project', first.project_id]);
    expect(listed.code).toBe(0);
    const rows = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => r.api_key_id)).toEqual([first.api_key_id, second.api_key_id]);
    expect(listed.stdout).not.toContain(first.api_key);
  });

  it('api-keys list prints every key of a project into a pipe, however many, before it exits', async () => {
    // Far more than a pipe holds (64 kB): what the reader has not taken yet when the CLI is done must not be lost.
    const project = randomUUID();
    await api.db.dataSource.query(
      `INSERT INTO api_keys (id, project_id, name, key_hash, created_at)
       SELECT 'key_many' || lpad(g::text, 5, '0'), $1::uuid, 'key number ' || g, md5(g::text) || md5($1::text || g), now()
       FROM generate_series(1, 3000) g`,
      [project],
    );
    const listed = await npm(['api-keys', 'list', '--project', project]);
    expect(listed.code).toBe(0);
    const rows = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { api_key_id: string });
    expect(rows.length).toBe(3000);
    expect(rows[2999].api_key_id).toBe('key_many03000');
  });

  it('api-keys revoke: the key gets 401 at once; revoking again fails', async () => {
    const k = JSON.parse((await cli(['api-keys', 'create'])).stdout);
    // The API caches key lookups while its change feed is up: the revocation must get past that cache.
    await eventually(async () => api.app.get(ApiKeyChangeListener).live);
    expect((await api.http.get('/v1/webhooks', { key: k.api_key })).status).toBe(200);
    expect((await api.http.get('/v1/webhooks', { key: k.api_key })).status).toBe(200);
    // Other suites' APIs share this database and must confirm too: give a busy CI machine room.
    const revoked = await cli(['api-keys', 'revoke', k.api_key_id], { API_KEY_CONFIRM_SECONDS: '30' });
    expect(revoked.code).toBe(0);
    const printed = JSON.parse(revoked.stdout);
    expect(printed).toMatchObject({
      api_key_id: k.api_key_id,
      revoked: true,
      replicas_unconfirmed: 0,
      replicas_checked: true,
    });
    expect(printed.replicas_confirmed).toBeGreaterThanOrEqual(1);
    expect((await api.http.get('/v1/webhooks', { key: k.api_key })).status).toBe(401);
    const again = await cli(['api-keys', 'revoke', k.api_key_id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      new RegExp(`^API key ${k.api_key_id} was already revoked at \\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z\n$`),
    );
    // A key that never existed is told apart from one revoked before.
    const unknown = await cli(['api-keys', 'revoke', 'key_01JD0000000000000000000000']);
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'no API key key_01JD0000000000000000000000\n' });
  });

  it('api-keys create takes a name of up to 200 characters, counted as characters, not UTF-16 units', async () => {
    const emoji = '\u{1F511}'.repeat(200);
    const made = await cli(['api-keys', 'create', '--name', emoji]);
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
    const stored: { name: string }[] = await api.db.dataSource.query(
      'SELECT name FROM api_keys WHERE id = $1',
      [JSON.parse(made.stdout).api_key_id],
    );
    expect(stored[0].name).toBe(emoji);
    const long = await cli(['api-keys', 'create', '--name', `${emoji}x`]);
    expect({ code: long.code, stderr: long.stderr }).toEqual({
      code: 1,
      stderr: '--name must be at most 200 characters\n',
    });
  });

  it('api-keys create refuses an empty or blank name, storing nothing', async () => {
    const project = randomUUID();
    for (const name of ['', '  ']) {
      const made = await cli(['api-keys', 'create', '--project', project, '--name', name]);
      expect({ code: made.code, stdout: made.stdout, stderr: made.stderr }).toEqual({
        code: 1,
        stdout: '',
        stderr: '--name must not be empty (leave it out for a key without a name)\n',
      });
    }
    const stored: unknown[] = await api.db.dataSource.query('SELECT 1 FROM api_keys WHERE project_id = $1', [
      project,
    ]);
    expect(stored).toHaveLength(0);
  });

  it('fails at once, naming the reason, when Postgres is unreachable', async () => {
    const res = await cli(['api-keys', 'create'], {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/webhooks_test',
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: Postgres is unreachable: .*ECONNREFUSED/);
    expect(res.stdout).toBe('');
  });

  it('says to run migrate when the database is missing or not migrated', async () => {
    const name = siblingDatabaseName('cli_unmigrated');
    const url = await droppedDatabase(name);
    try {
      const missing = await cli(['api-keys', 'create'], { DATABASE_URL: url });
      expect({ code: missing.code, stdout: missing.stdout }).toEqual({ code: 1, stdout: '' });
      expect(missing.stderr).toMatch(
        /does not exist \(the database is not migrated: run `migrate` first\)\n$/,
      );
      await withAdmin((admin) => admin.query(`CREATE DATABASE "${name}"`));
      for (const args of [
        ['api-keys', 'create'],
        ['api-keys', 'list', '--project', randomUUID()],
        ['secrets', 'reencrypt'],
      ]) {
        const empty = await cli(args, { DATABASE_URL: url });
        expect({ args, code: empty.code, stdout: empty.stdout }).toEqual({ args, code: 1, stdout: '' });
        expect(empty.stderr).toMatch(/^error: .*\(the database is not migrated: run `migrate` first\)\n$/m);
      }
      const migrated = await cli(['migrate'], { DATABASE_URL: url });
      expect(migrated.code).toBe(0);
      expect((await cli(['api-keys', 'create'], { DATABASE_URL: url })).code).toBe(0);
    } finally {
      await droppedDatabase(name);
    }
  });

  it('reports a mistake in its arguments as such, not as Postgres being unreachable', async () => {
    const unreachable = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/webhooks_test' };
    const cases: [string[], RegExp][] = [
      [[], /^usage: cli <command>\n {2}api-keys create/],
      [['bogus'], /^unknown command 'bogus'\nusage: cli <command>\n {2}api-keys create/],
      // Names every object inherits are commands like any other unknown word.
      [['constructor'], /^unknown command 'constructor'\nusage: cli <command>/],
      [['toString'], /^unknown command 'toString'\nusage: cli <command>/],
      [['__proto__'], /^unknown command '__proto__'\nusage: cli <command>/],
      [['api-keys', 'bogus'], /^usage: api-keys create/],
      [['api-keys', 'create', '--project', 'nope'], /^--project must be a UUID\n$/],
      [
        ['api-keys', 'create', '--bogus'],
        /^Unknown option '--bogus'.*\nusage: cli <command>\n {2}api-keys create/s,
      ],
      [['api-keys', 'create', '--name'], /^Option '--name <value>' argument missing\nusage: cli <command>/],
      [['api-keys', 'list'], /^api-keys list needs --project <uuid>\n$/],
      [['api-keys', 'revoke'], /^usage: api-keys revoke <api_key_id>\n$/],
      [['rotation', 'rotate'], /^usage: rotation rotate <webhook_id>\n$/],
      [['secrets', 'reencrypt', 'now'], /^usage: secrets reencrypt\n$/],
    ];
    for (const [args, stderr] of cases) {
      const res = await cli(args, unreachable);
      expect({ args, code: res.code, stdout: res.stdout }).toEqual({ args, code: 1, stdout: '' });
      expect(res.stderr).toMatch(stderr);
    }
  });

  it('prints its usage on stdout for --help, -h or help, wherever asked, and does nothing else', async () => {
    const unreachable = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/webhooks_test' };
    for (const args of [
      ['--help'],
      ['-h'],
      ['help'],
      ['rotation', 'rotate', '--help'],
      ['api-keys', 'revoke', '-h'],
    ]) {
      const res = await cli(args, unreachable);
      expect({ args, code: res.code, stderr: res.stderr }).toEqual({ args, code: 0, stderr: '' });
      expect(res.stdout).toMatch(
        /^usage: cli <command>\n {2}api-keys create .*\n {2}rotation rotate <webhook_id>\n$/s,
      );
    }
  });

  it('refuses an option given twice rather than keeping the last one', async () => {
    const project = '5f0c8a34-3d0e-4a5e-9d3b-2f6c1f0e7a11';
    const other = '5f0c8a34-3d0e-4a5e-9d3b-2f6c1f0e7a12';
    const twice = await cli(['api-keys', 'create', '--project', project, '--project', other]);
    expect(twice).toEqual({ code: 1, stdout: '', stderr: '--project must be given once\n' });
    const named = await cli(['api-keys', 'create', '--name', 'a', '--name=b']);
    expect(named).toEqual({ code: 1, stdout: '', stderr: '--name must be given once\n' });
    const listed = await cli(['api-keys', 'list', '--project', project, '--project', other]);
    expect(listed).toEqual({ code: 1, stdout: '', stderr: '--project must be given once\n' });
    const tail = await cli(['audit', 'tail', '--group', 'a', '--group', 'b']);
    expect({ code: tail.code, stdout: tail.stdout }).toEqual({ code: 1, stdout: '' });
    expect(tail.stderr).toMatch(/^--group must be given once\nusage: audit tail/);
    const consumer = await cli(['audit', 'tail', '--group', 'a', '--consumer', 'x', '--consumer', 'y']);
    expect({ code: consumer.code, stdout: consumer.stdout }).toEqual({ code: 1, stdout: '' });
    expect(consumer.stderr).toMatch(/^--consumer must be given once\nusage: audit tail/);
    const keys: unknown[] = await api.db.dataSource.query(
      'SELECT 1 FROM api_keys WHERE project_id IN ($1, $2)',
      [project, other],
    );
    expect(keys).toEqual([]);
  });

  it('audit tail refuses a malformed group or consumer name, and a consumer without a group', async () => {
    for (const [args, message] of [
      [['--group', 'has space'], '--group must be 1 to 100 characters of [A-Za-z0-9_.:-]\n'],
      [['--group', 'g'.repeat(101)], '--group must be 1 to 100 characters of [A-Za-z0-9_.:-]\n'],
      [['--group', 'ops', '--consumer', ''], '--consumer must be 1 to 100 characters of [A-Za-z0-9_.:-]\n'],
      [
        ['--group', 'ops', '--consumer', 'a/b'],
        '--consumer must be 1 to 100 characters of [A-Za-z0-9_.:-]\n',
      ],
    ] as const) {
      expect(await cli(['audit', 'tail', ...args])).toEqual({ code: 1, stdout: '', stderr: message });
    }
    const alone = await cli(['audit', 'tail', '--consumer', 'east']);
    expect({ code: alone.code, stdout: alone.stdout }).toEqual({ code: 1, stdout: '' });
    expect(alone.stderr).toMatch(
      /^--consumer names a consumer of a --group; a throwaway group has only one\nusage: audit tail/,
    );
  });

  it('migrate says so too when Postgres is unreachable, or takes connections and never answers', async () => {
    const refused = await cli(['migrate'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/webhooks_test' });
    expect({ code: refused.code, stdout: refused.stdout }).toEqual({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(/^error: Postgres is unreachable: .*ECONNREFUSED/);
    // A server that takes the connection and then says nothing: Postgres behind a frozen proxy.
    const silent = await TcpProxy.inFrontOf(TEST_DATABASE_URL);
    silent.freeze();
    try {
      const hung = await cli(['migrate'], {
        DATABASE_URL: `postgres://postgres@127.0.0.1:${silent.port}/webhooks_test`,
      });
      expect({ code: hung.code, stdout: hung.stdout }).toEqual({ code: 1, stdout: '' });
      expect(hung.stderr).toMatch(/^error: Postgres is unreachable: /);
    } finally {
      await silent.stop();
    }
  });

  it.each([
    [['api-keys', 'create', '--project', 'not-a-uuid']],
    [['api-keys', 'list']],
    [['api-keys', 'revoke']],
    [['api-keys', 'frobnicate']],
    [['nonsense']],
    [[]],
    [['secrets', 'shred']],
    [['migrate', 'now']],
  ])('refuses %j with exit code 1 and a message on stderr', async (args) => {
    const res = await cli(args);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr.length).toBeGreaterThan(0);
  });

  it('reports invalid configuration on stderr with exit code 1', async () => {
    const res = await cli(['api-keys', 'create'], { MAX_WEBHOOKS_PER_PROJECT: 'many' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('MAX_WEBHOOKS_PER_PROJECT');
  });

  it('migrate creates a missing database once however many run at once', async () => {
    const url = await droppedDatabase(siblingDatabaseName('concurrent_migrate'));
    try {
      // What `migrate` does, four times at once (as replicas starting together would).
      const runs = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const created = await ensureDatabase(url);
          await runMigrations(url);
          return created;
        }),
      );
      expect(runs.filter(Boolean)).toHaveLength(1);
      expect((await cli(['migrate'], { DATABASE_URL: url })).stdout).toContain('"migrations_applied":[]');
    } finally {
      await droppedDatabase(siblingDatabaseName('concurrent_migrate'));
    }
  });

  it('migrate creates and migrates a database whose name needs quoting (a dot, capitals)', async () => {
    const name = siblingDatabaseName('Dotted.Name');
    const url = await droppedDatabase(name);
    try {
      const first = await cli(['migrate'], { DATABASE_URL: url });
      expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(first.stdout)).toMatchObject({ database_created: true });
      expect(JSON.parse(first.stdout).migrations_applied.length).toBeGreaterThan(0);
      const again = await cli(['migrate'], { DATABASE_URL: url });
      expect(JSON.parse(again.stdout)).toEqual({ database_created: false, migrations_applied: [] });
      const found = await withAdmin((admin) =>
        admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]),
      );
      expect(found.rowCount).toBe(1);
    } finally {
      await droppedDatabase(name);
    }
  });

  it('rotation rotate queues the targeted re-run of an overdue scheduled rotation, and only that', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/rot', subscribed_events: ['task.completed'] },
    });
    const id = created.body.id as string;
    expect(
      (await api.http.put(`/v1/webhooks/${id}/rotation-policy`, { key, body: { interval_days: 7 } })).status,
    ).toBe(200);

    const notDue = await cli(['rotation', 'rotate', id]);
    expect(notDue.code).toBe(0);
    expect(JSON.parse(notDue.stdout)).toEqual({
      queued: false,
      webhook_id: id,
      next_rotation_at: expect.any(String),
    });

    const dueAt = new Date(Date.now() - 3_600_000);
    await api.db.dataSource.query(
      'UPDATE rotation_schedules SET next_rotation_at = $2 WHERE webhook_id = $1',
      [id, dueAt],
    );
    const queued = await cli(['rotation', 'rotate', id]);
    expect({ code: queued.code, stderr: queued.stderr }).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(queued.stdout);
    expect(out).toEqual({
      queued: true,
      webhook_id: id,
      due_at: dueAt.toISOString(),
      job_id: `rotate-${id}-${dueAt.getTime()}`,
    });
    const queue = new Queue(QueueName.Rotation, {
      connection: redisOptionsFromUrl(TEST_REDIS_URL),
      prefix: QUEUE_PREFIX,
    });
    try {
      const job = await queue.getJob(out.job_id);
      expect(job?.name).toBe(JobName.SecretRotate);
      expect(job?.data).toEqual({ webhookId: id, dueAt: dueAt.toISOString() });
      await job?.remove().catch(() => undefined); // the worker is not running here; leave no job behind
    } finally {
      await queue.close();
    }

    const unknown = await cli(['rotation', 'rotate', 'wh_nope']);
    expect({ code: unknown.code, stderr: unknown.stderr }).toEqual({
      code: 1,
      stderr: 'webhook wh_nope not found (or deleted)\n',
    });
    const unscheduled = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/unscheduled', subscribed_events: ['task.completed'] },
    });
    const none = await cli(['rotation', 'rotate', unscheduled.body.id]);
    expect({ code: none.code, stderr: none.stderr }).toEqual({
      code: 1,
      stderr: `webhook ${unscheduled.body.id} has no rotation schedule (no policy applies to it)\n`,
    });
    await api.http.delete(`/v1/webhooks/${id}`, { key });
    const deleted = await cli(['rotation', 'rotate', id]);
    expect({ code: deleted.code, stderr: deleted.stderr }).toEqual({
      code: 1,
      stderr: `webhook ${id} not found (or deleted)\n`,
    });
    expect((await cli(['rotation', 'spin', id])).stderr).toMatch(/usage: rotation rotate/);
  });

  it('migrate is idempotent', async () => {
    const res = await cli(['migrate']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ database_created: false, migrations_applied: [] });
  });

  it('secrets reencrypt moves every secret to the first key of the ring', async () => {
    const oldRing = `old:${keyOf('old')}`;
    const newRing = `new:${keyOf('new')},${oldRing}`;
    const DATABASE_URL = await freshDatabase(siblingDatabaseName('reencrypt'));
    const local = await startApi({ env: { SECRETS_ENCRYPTION_KEYS: oldRing, DATABASE_URL } });
    try {
      const { key } = await local.newKey();
      // With an Idempotency-Key: its stored first response holds the secret, sealed under the ring too.
      const created = await local.http.post('/v1/webhooks', {
        key,
        headers: { 'idempotency-key': 'reencrypt-1' },
        body: { url: 'https://hooks.example.com/re', subscribed_events: ['task.completed'] },
      });
      expect(created.status).toBe(201);
      const res = await cli(['secrets', 'reencrypt'], { SECRETS_ENCRYPTION_KEYS: newRing, DATABASE_URL });
      expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(res.stdout)).toEqual({ reencrypted: 1, idempotent_responses: 1 });
      const rows: { key_id: string; ciphertext: Buffer }[] = await local.db.dataSource.query(
        'SELECT key_id, ciphertext FROM webhook_secrets WHERE webhook_id = $1',
        [created.body.id],
      );
      expect(rows[0].key_id).toBe('new');
      const onlyNew = new SecretCipher({
        secrets: {
          keyRing: [{ id: 'new', key: Buffer.from(keyOf('new'), 'base64') }],
          usingDevelopmentKey: false,
          gracePeriodHours: 24,
        },
      });
      expect(onlyNew.open({ keyId: rows[0].key_id, ciphertext: rows[0].ciphertext }, created.body.id)).toBe(
        created.body.secret,
      );
      const stored: { project_id: string; key_id: string; response: Buffer }[] =
        await local.db.dataSource.query(
          `SELECT project_id, key_id, response FROM idempotency_keys WHERE key = 'reencrypt-1'`,
        );
      expect(stored[0].key_id).toBe('new');
      const replay = onlyNew.open(
        { keyId: stored[0].key_id, ciphertext: stored[0].response },
        idempotentResponseAad(stored[0].project_id, 'reencrypt-1'),
      );
      expect(JSON.parse(replay)).toEqual(created.body);
      // Nothing is left under the old key: a second run rewrites nothing.
      const again = await cli(['secrets', 'reencrypt'], { SECRETS_ENCRYPTION_KEYS: newRing, DATABASE_URL });
      expect(JSON.parse(again.stdout)).toEqual({ reencrypted: 0, idempotent_responses: 0 });
    } finally {
      await local.close();
    }
  });

  it('secrets reencrypt waits for a rotation holding a webhook instead of deadlocking with it', async () => {
    const oldRing = `old:${keyOf('old')}`;
    const newRing = `new:${keyOf('new')},${oldRing}`;
    const DATABASE_URL = await freshDatabase(siblingDatabaseName('reencrypt'));
    const local = await startApi({ env: { SECRETS_ENCRYPTION_KEYS: oldRing, DATABASE_URL } });
    const rotation = new Client({ connectionString: DATABASE_URL });
    await rotation.connect();
    try {
      const { key } = await local.newKey();
      for (const n of [1, 2])
        await local.http.post('/v1/webhooks', {
          key,
          body: { url: `https://hooks.example.com/lock${n}`, subscribed_events: ['task.completed'] },
        });
      // The two secrets in the order re-encryption pages through them; first and second are their webhooks.
      const secrets: { id: string; webhook_id: string }[] = (
        await rotation.query('SELECT id, webhook_id FROM webhook_secrets ORDER BY id')
      ).rows;
      const [first, second] = secrets.map((s) => s.webhook_id);
      // What a rotation (manual, or a sweep's batch) does: the webhook rows first, then their secrets, here the
      // second webhook's before the first's.
      await rotation.query('BEGIN');
      await rotation.query('SELECT 1 FROM webhooks WHERE id = ANY($1) FOR UPDATE', [[first, second]]);
      await rotation.query('UPDATE webhook_secrets SET claimed = claimed WHERE webhook_id = $1', [second]);
      const reencrypt = cli(['secrets', 'reencrypt'], { SECRETS_ENCRYPTION_KEYS: newRing, DATABASE_URL });
      // Re-encryption is under way and waiting for a lock the rotation holds.
      // (Read on another connection: within a transaction, pg_stat_activity keeps its first snapshot.)
      await eventually(async () => {
        const waiting: unknown[] = await local.db.dataSource.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return waiting.length === 1;
      });
      await rotation.query('UPDATE webhook_secrets SET claimed = claimed WHERE webhook_id = $1', [first]);
      await rotation.query('COMMIT');
      const res = await reencrypt;
      expect({ code: res.code, stderr: res.stderr, stdout: res.stdout.trim() }).toEqual({
        code: 0,
        stderr: '',
        stdout: JSON.stringify({ reencrypted: 2, idempotent_responses: 0 }),
      });
    } finally {
      await rotation.end();
      await local.close();
    }
  });

  it('secrets reencrypt does not count a secret destroyed after its page was read', async () => {
    const oldRing = `old:${keyOf('old')}`;
    const newRing = `new:${keyOf('new')},${oldRing}`;
    const DATABASE_URL = await freshDatabase(siblingDatabaseName('reencrypt'));
    const local = await startApi({ env: { SECRETS_ENCRYPTION_KEYS: oldRing, DATABASE_URL } });
    const deletion = new Client({ connectionString: DATABASE_URL });
    await deletion.connect();
    try {
      const { key } = await local.newKey();
      const ids: string[] = [];
      for (const n of [1, 2]) {
        const created = await local.http.post('/v1/webhooks', {
          key,
          body: { url: `https://hooks.example.com/gone${n}`, subscribed_events: ['task.completed'] },
        });
        ids.push(created.body.id as string);
      }
      // A delete holds both webhooks while re-encryption reads the page of their secrets, then destroys the
      // second one's secrets and commits: re-encryption, which waited for the lock, rewrites only the first.
      await deletion.query('BEGIN');
      await deletion.query('SELECT 1 FROM webhooks WHERE id = ANY($1) ORDER BY id FOR UPDATE', [ids]);
      const reencrypt = cli(['secrets', 'reencrypt'], { SECRETS_ENCRYPTION_KEYS: newRing, DATABASE_URL });
      await eventually(async () => {
        const waiting: unknown[] = await local.db.dataSource.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return waiting.length === 1;
      });
      await deletion.query('DELETE FROM webhook_secrets WHERE webhook_id = $1', [ids[1]]);
      await deletion.query('COMMIT');
      const res = await reencrypt;
      expect({ code: res.code, stderr: res.stderr, stdout: res.stdout.trim() }).toEqual({
        code: 0,
        stderr: '',
        stdout: JSON.stringify({ reencrypted: 1, idempotent_responses: 0 }),
      });
      const left: { key_id: string }[] = await local.db.dataSource.query(
        'SELECT key_id FROM webhook_secrets WHERE webhook_id = ANY($1)',
        [ids],
      );
      expect(left).toEqual([{ key_id: 'new' }]);
    } finally {
      await deletion.end();
      await local.close();
    }
  });

  it('secrets reencrypt refuses, naming the key, when a key in use is missing from the ring', async () => {
    const DATABASE_URL = await freshDatabase(siblingDatabaseName('reencrypt'));
    const local = await startApi({ env: { SECRETS_ENCRYPTION_KEYS: `gone:${keyOf('gone')}`, DATABASE_URL } });
    try {
      const { key } = await local.newKey();
      await local.http.post('/v1/webhooks', {
        key,
        body: { url: 'https://hooks.example.com/x', subscribed_events: ['task.completed'] },
      });
      const res = await cli(['secrets', 'reencrypt'], {
        SECRETS_ENCRYPTION_KEYS: `other:${keyOf('other')}`,
        DATABASE_URL,
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/not in the key ring/);
    } finally {
      await local.close();
    }
  });

  /**
   * Creates a webhook (with an Idempotency-Key, so its first response is stored too) under the ring `old`, lets
   * `damage` flip a bit of what was stored, and runs `secrets reencrypt` towards a new first key: it must stop,
   * naming the row it cannot decrypt (the message `damage` returns).
   */
  async function expectReencryptToName(
    damage: (local: RunningApi, webhookId: string, projectId: string) => Promise<string>,
  ): Promise<void> {
    const oldRing = `old:${keyOf('old')}`;
    const DATABASE_URL = await freshDatabase(siblingDatabaseName('reencrypt'));
    const local = await startApi({ env: { SECRETS_ENCRYPTION_KEYS: oldRing, DATABASE_URL } });
    try {
      const { key, projectId } = await local.newKey();
      const created = await local.http.post('/v1/webhooks', {
        key,
        headers: { 'idempotency-key': 'damaged' },
        body: { url: 'https://hooks.example.com/damaged', subscribed_events: ['task.completed'] },
      });
      expect(created.status).toBe(201);
      const named = await damage(local, created.body.id as string, projectId);
      const res = await cli(['secrets', 'reencrypt'], {
        SECRETS_ENCRYPTION_KEYS: `new:${keyOf('new')},${oldRing}`,
        DATABASE_URL,
      });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`${named} cannot be decrypted: `);
    } finally {
      await local.close();
    }
  }

  it('secrets reencrypt names the secret and its webhook when a stored secret does not decrypt', async () => {
    await expectReencryptToName(async (local, webhookId) => {
      // One bit of the ciphertext flipped: the key is in the ring, the authentication tag no longer matches.
      // An UPDATE answers its rows and its count.
      const [[row]]: [{ fingerprint: string }[], number] = await local.db.dataSource.query(
        `UPDATE webhook_secrets SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1)
          WHERE webhook_id = $1 RETURNING fingerprint`,
        [webhookId],
      );
      return `secret ${row.fingerprint} of webhook ${webhookId}`;
    });
  });

  it('secrets reencrypt names the Idempotency-Key and project of a stored response that does not decrypt', async () => {
    await expectReencryptToName(async (local, _webhookId, projectId) => {
      await local.db.dataSource.query(
        `UPDATE idempotency_keys SET response = set_byte(response, 20, get_byte(response, 20) # 1)
          WHERE project_id = $1 AND key = 'damaged'`,
        [projectId],
      );
      return `the stored response to Idempotency-Key "damaged" of project ${projectId}`;
    });
  });
});
