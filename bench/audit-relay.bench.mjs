// Audit relay lag at a steady change rate: the compiled API and worker on a fresh database, a paced loop of
// PATCHes (each one a real change, so each one an audit event), and the lag of every event from its
// `occurred_at` to the moment its stream entry was created (the millisecond part of the XADD id).
import http from 'node:http';
import { join } from 'node:path';
import Redis from 'ioredis';
import pg from 'pg';
import {
  cli,
  cpuSeconds,
  freshDatabase,
  percentile,
  rssMb,
  sleep,
  startProcess,
  startScript,
} from './support.mjs';

const RATE = Number(process.env.BENCH_AUDIT_RATE ?? 500); // changes per second
const SECONDS = Number(process.env.BENCH_AUDIT_SECONDS ?? 20);
const PROJECTS = 4;
const HOOKS_PER_PROJECT = 40;
const MAX_IN_FLIGHT = Number(process.env.BENCH_AUDIT_MAX_IN_FLIGHT ?? 64);
const PORT = 4400;
const REDIS_URL = 'redis://127.0.0.1:6379/11';
const TARGET_P99_MS = 250;

// Plain node:http with keep-alive: the load generator shares the 2 cores with everything it measures, and
// costs far less CPU per request than fetch.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** PATCHes one webhook; resolves with the status once the body is read. */
function patch(hook, body) {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: PORT,
        path: `/v1/webhooks/${hook.id}`,
        method: 'PATCH',
        agent,
        headers: {
          'anchor-api-key': hook.key,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export default async function run({ root, log }) {
  const databaseUrl = await freshDatabase('bench_audit_relay');
  const stream = `bench:audit:${Date.now()}`;
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    AUDIT_STREAM: stream,
    PORT: String(PORT),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // Many webhooks, so that the PATCHes in flight rarely queue on the same row lock.
    MAX_WEBHOOKS_PER_PROJECT: String(HOOKS_PER_PROJECT),
    NODE_ENV: 'development',
  };
  cli(root, ['migrate'], env);
  // As deployed: the node flags of `npm run start:api` (its heap settings decide the RSS reported below).
  const apiCommand = startScript(root, 'start:api');
  const api = await startProcess(
    root,
    apiCommand.entry,
    env,
    `http://127.0.0.1:${PORT}/health/ready`,
    log,
    apiCommand.nodeArgs,
  );
  const worker = await startProcess(root, join(root, 'dist/apps/worker/src/main.js'), env, null, log);
  const redis = new Redis(REDIS_URL);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const base = `http://127.0.0.1:${PORT}`;
    const hooks = [];
    for (let p = 0; p < PROJECTS; p++) {
      const { api_key: key } = cli(root, ['api-keys', 'create', '--name', `bench-${p}`], env);
      for (let h = 0; h < HOOKS_PER_PROJECT; h++) {
        const res = await fetch(`${base}/v1/webhooks`, {
          method: 'POST',
          headers: { 'anchor-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({
            url: `https://hooks.example.com/bench/${p}/${h}`,
            subscribed_events: ['task.completed'],
          }),
        });
        if (res.status !== 201) throw new Error(`create webhook: ${res.status} ${await res.text()}`);
        hooks.push({ key, id: (await res.json()).id });
      }
    }
    // Let the worker drain the setup events, so the measurement sees the steady state only.
    await sleep(1500);
    const measuredFrom = new Date();
    const cpuBefore = { api: cpuSeconds(api.child.pid), worker: cpuSeconds(worker.child.pid) };

    // Paced open loop: request i is due at start + i / RATE, whatever the previous ones are doing.
    log(`driving ${RATE} changes/s for ${SECONDS} s over ${hooks.length} webhooks`);
    const total = RATE * SECONDS;
    let sent = 0;
    let ok = 0;
    let failed = 0;
    let inFlight = 0;
    let skipped = 0;
    const started = performance.now();
    const pending = new Set();
    const statuses = {};
    const answeredAt = new Map();
    while (sent + skipped < total) {
      const due = started + ((sent + skipped) * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (inFlight >= MAX_IN_FLIGHT) {
        skipped++; // counted against the achieved rate, never silently dropped from it
        continue;
      }
      const i = sent++;
      const hook = hooks[i % hooks.length];
      inFlight++;
      const p = patch(hook, { description: `change ${i}` })
        .then((status) => {
          answeredAt.set(`change ${i}`, Date.now());
          if (status === 200) ok++;
          else {
            failed++;
            statuses[status] = (statuses[status] ?? 0) + 1;
          }
        })
        .catch((e) => {
          failed++;
          statuses[e?.code ?? 'error'] = (statuses[e?.code ?? 'error'] ?? 0) + 1;
        })
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - started) / 1000;
    const cpu = {
      api: Math.round((100 * (cpuSeconds(api.child.pid) - cpuBefore.api)) / elapsed),
      worker: Math.round((100 * (cpuSeconds(worker.child.pid) - cpuBefore.worker)) / elapsed),
    };
    log(
      `sent ${sent} (ok ${ok}, failed ${failed} ${JSON.stringify(statuses)}, skipped ${skipped}) in ${elapsed.toFixed(1)} s`,
    );

    // Every committed change's event, per Postgres; wait until the stream holds them all (or give up).
    const { rows } = await db.query(
      `SELECT id FROM audit_events WHERE type = 'webhook.updated' AND occurred_at >= $1`,
      [measuredFrom],
    );
    const expected = new Set(rows.map((r) => r.id));
    let onStream = new Map();
    let afterAnswer = [];
    let inRequest = [];
    let duplicates = 0;
    for (let attempt = 0; attempt < 100; attempt++) {
      onStream = new Map();
      afterAnswer = [];
      inRequest = [];
      duplicates = 0;
      const entries = await redis.xrange(stream, '-', '+');
      for (const [entryId, fields] of entries) {
        const event = JSON.parse(fields[fields.indexOf('event') + 1]);
        if (event.type !== 'webhook.updated' || !expected.has(event.id)) continue;
        if (onStream.has(event.id)) {
          duplicates++;
          continue;
        }
        const entryAt = Number(entryId.split('-')[0]);
        onStream.set(event.id, entryAt - Date.parse(event.occurred_at));
        // The relay's own share: the entry's time after the API answered (the commit is a little earlier).
        const answered = answeredAt.get(event.data.changes[0].to);
        if (answered !== undefined) {
          afterAnswer.push(entryAt - answered);
          inRequest.push(answered - Date.parse(event.occurred_at));
        }
      }
      if (onStream.size >= expected.size) break;
      await sleep(200);
    }
    const lost = [...expected].filter((id) => !onStream.has(id)).length;
    const lags = [...onStream.values()];
    const p50 = percentile(lags, 50);
    const p99 = percentile(lags, 99);
    const max = lags.length ? Math.max(...lags) : null;
    const rate = Math.round(ok / elapsed);
    const rss = { api: rssMb(api.child.pid), worker: rssMb(worker.child.pid) };
    return {
      name: 'audit-relay',
      metrics: [
        {
          name: 'change rate (achieved)',
          value: rate,
          unit: 'changes/s',
          target: `~${RATE}`,
          pass: rate >= RATE * 0.95,
        },
        { name: 'relay lag p50', value: p50, unit: 'ms' },
        {
          name: 'relay lag p99',
          value: p99,
          unit: 'ms',
          target: `< ${TARGET_P99_MS}`,
          pass: p99 !== null && p99 < TARGET_P99_MS,
        },
        { name: 'relay lag max', value: max, unit: 'ms' },
        { name: 'API answer after occurred_at p99', value: percentile(inRequest, 99), unit: 'ms' },
        { name: 'stream entry after API answer p50', value: percentile(afterAnswer, 50), unit: 'ms' },
        { name: 'stream entry after API answer p99', value: percentile(afterAnswer, 99), unit: 'ms' },
        { name: 'events lost', value: lost, unit: 'events', target: '0', pass: lost === 0 },
        { name: 'events published twice', value: duplicates, unit: 'events' },
        { name: 'failed changes', value: failed, unit: 'requests', target: '0', pass: failed === 0 },
      ],
      notes: [
        `${expected.size} events over ${elapsed.toFixed(1)} s; lag = XADD id time - occurred_at (commit to stream entry, including the transaction); RSS api ${rss.api} MB, worker ${rss.worker} MB; CPU during the load: api ${cpu.api}%, worker ${cpu.worker}% of one core`,
        `machine load average at the end: ${(await import('node:os'))
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} (${(await import('node:os')).cpus().length} cores, shared with whatever else runs)`,
      ],
    };
  } finally {
    agent.destroy();
    await db.end();
    await redis.del(stream).catch(() => undefined);
    redis.disconnect();
    await worker.stop();
    await api.stop();
  }
}
