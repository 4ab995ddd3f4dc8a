// Scheduled rotation at scale: one sweep over 100,000 due webhooks (new secrets, demoted previous secrets,
// schedules advanced, one audit event each), run by the compiled worker process exactly as deployed.
// Build first (`npm run build`); `node bench/run.mjs rotation` runs it alone.
import Redis from 'ioredis';
import pg from 'pg';
import { cli, freshDatabase, rssMb, sleep, startProcess } from './support.mjs';

const WEBHOOKS = Number(process.env.BENCH_ROTATION_WEBHOOKS ?? 100_000);
const REDIS_URL = process.env.BENCH_ROTATION_REDIS ?? 'redis://127.0.0.1:6379/12';
const TARGET_PER_SECOND = 5000;

/** 100,000 live webhooks over 20,000 projects, each with a claimed current secret and a schedule due an hour ago. */
async function seed(client, now) {
  const created = new Date(now - 31 * 86_400_000);
  const due = new Date(now - 3_600_000);
  await client.query(
    `INSERT INTO webhooks (id, project_id, url, description, subscribed_events, enabled, created_at, updated_at)
     SELECT 'wh_BENCH' || lpad(g::text, 22, '0'),
            ('00000000-0000-4000-8000-' || lpad(((g - 1) / 5)::text, 12, '0'))::uuid,
            'https://hooks.example.com/bench/' || g, NULL, ARRAY['task.completed'], true, $2, $2
     FROM generate_series(1, $1) g`,
    [WEBHOOKS, created],
  );
  // Realistic sizes: 12-byte iv + 64 bytes + 16-byte tag. The sweep never opens the outgoing secret.
  await client.query(
    `INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
     SELECT gen_random_uuid(), id, 'current', 'created', true, 'dev', decode(repeat(md5(id), 6), 'hex')::bytea,
            'sha256:' || substr(md5(id), 1, 16), $1
     FROM webhooks`,
    [created],
  );
  // Steady state: the advance notices of these rotations went out a day ago, so the sweep only rotates.
  await client.query(
    `INSERT INTO rotation_schedules
       (webhook_id, project_id, scope, interval_days, grace_period_hours, anchor_at, next_rotation_at, notice_sent_for)
     SELECT id, project_id, 'project', 30, 24, $1, $2, $2 FROM webhooks`,
    [created, due],
  );
  // As autovacuum would leave them in steady state: hint bits set and statistics fresh. Without this, the
  // first sweep pays for the seed's aftermath and autovacuum starts on these tables in the middle of it.
  await client.query('VACUUM ANALYZE');
}

export default async function run({ root, log }) {
  const url = await freshDatabase('bench_rotation_sweep');
  const env = { DATABASE_URL: url, REDIS_URL, LOG_LEVEL: 'warn', ROTATION_SWEEP_EVERY_MS: '500' };
  cli(root, ['migrate'], env);
  const redis = new Redis(REDIS_URL);
  await redis.flushdb(); // db 12 belongs to this benchmark and the rotation tests
  redis.disconnect();

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const seedStarted = Date.now();
  await seed(client, Date.now());
  log(`seeded ${WEBHOOKS} due webhooks in ${Date.now() - seedStarted} ms`);
  const due = async () =>
    Number(
      (await client.query('SELECT count(*) AS n FROM rotation_schedules WHERE next_rotation_at <= now()'))
        .rows[0].n,
    );

  const worker = await startProcess(root, 'dist/apps/worker/src/main.js', env, null, log);
  const samples = [];
  let firstSeen = null;
  let finished = null;
  let tick = 0;
  const deadline = Date.now() + 300_000;
  try {
    // Sample memory every 50 ms; ask Postgres how much is left every 250 ms (an index-only count, but still
    // work on the same 2 cores). The sweep starts when the job scheduler fires and is over when nothing is due.
    for (;;) {
      if (worker.child.exitCode !== null) throw new Error('worker exited during the sweep');
      const rss = rssMb(worker.child.pid);
      if (rss !== null) samples.push({ at: Date.now(), rss, sweeping: firstSeen !== null });
      if (++tick % 5 === 0 || firstSeen === null) {
        const left = await due();
        if (firstSeen === null && left < WEBHOOKS) firstSeen = Date.now();
        if (left === 0) {
          finished = Date.now();
          break;
        }
        if (Date.now() > deadline) throw new Error(`sweep not finished after 300 s (${left} still due)`);
      }
      await sleep(50);
    }
  } finally {
    await worker.stop();
  }

  // The sweep's own clock: from the first to the last rotation written (each batch stamps its start time),
  // plus the span of the last batch measured from outside.
  const span = (
    await client.query(
      `SELECT extract(epoch FROM max(created_at) - min(created_at)) * 1000 AS ms, count(*) AS n
       FROM webhook_secrets WHERE trigger = 'scheduled'`,
    )
  ).rows[0];
  const events = Number(
    (await client.query(`SELECT count(*) AS n FROM audit_events WHERE type = 'webhook.secret.rotated'`))
      .rows[0].n,
  );
  const doubles = Number(
    (
      await client.query(
        `SELECT count(*) AS n FROM (SELECT webhook_id FROM webhook_secrets WHERE trigger = 'scheduled'
         GROUP BY webhook_id HAVING count(*) > 1) d`,
      )
    ).rows[0].n,
  );
  await client.end();

  const observedMs = finished - firstSeen;
  const rotated = Number(span.n);
  const perSecond = Math.round((rotated / Math.max(observedMs, 1)) * 1000);
  const idle = samples.filter((s) => !s.sweeping).map((s) => s.rss);
  const during = samples.filter((s) => s.sweeping).map((s) => s.rss);
  const rssBefore = idle.length ? idle[idle.length - 1] : null;
  const rssPeak = during.length ? Math.max(...during) : null;
  const quarterPeak = (q) => {
    const part = during.slice(Math.floor((q * during.length) / 4), Math.floor(((q + 1) * during.length) / 4));
    return part.length ? Math.max(...part) : null;
  };
  log(
    `rotated ${rotated} in ${observedMs} ms (db span ${Math.round(span.ms)} ms), ${events} audit events, ${doubles} doubles`,
  );
  return {
    name: 'rotation',
    metrics: [
      {
        name: `sweep rotations/s (${WEBHOOKS / 1000}k due, audit included)`,
        value: perSecond,
        unit: '/s',
        target: `>= ${TARGET_PER_SECOND}`,
        pass: perSecond >= TARGET_PER_SECOND && rotated === WEBHOOKS && events === WEBHOOKS && doubles === 0,
      },
      { name: 'sweep wall time', value: observedMs, unit: 'ms' },
      {
        name: 'webhooks rotated',
        value: rotated,
        unit: '',
        target: String(WEBHOOKS),
        pass: rotated === WEBHOOKS,
      },
      {
        name: 'rotated audit events',
        value: events,
        unit: '',
        target: String(WEBHOOKS),
        pass: events === WEBHOOKS,
      },
      { name: 'webhooks rotated twice', value: doubles, unit: '', target: '0', pass: doubles === 0 },
      { name: 'worker RSS before sweep', value: rssBefore, unit: 'MB' },
      { name: 'worker peak RSS during sweep', value: rssPeak, unit: 'MB' },
      // Flat memory: the first and the last quarter of the sweep peak alike (one batch per lane in memory).
      { name: 'worker peak RSS, first quarter of sweep', value: quarterPeak(0), unit: 'MB' },
      { name: 'worker peak RSS, last quarter of sweep', value: quarterPeak(3), unit: 'MB' },
    ],
    notes: [
      `${WEBHOOKS} webhooks over ${WEBHOOKS / 5} projects, batches of 1000 in 2 lanes (one transaction and 6 set-based statements per batch); RSS sampled every ~50 ms (${during.length} samples while sweeping)`,
    ],
  };
}
