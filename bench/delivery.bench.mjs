// Fan-out throughput of signed deliveries, end to end, on the compiled service: events published to
// EVENTS_STREAM, fanned out by the worker to 5 webhooks each, signed, POSTed over HTTPS (keep-alive) to a local
// receiver, and recorded as `succeeded` in the delivery log. The clock stops when the last row is recorded.
//
// Setup: a fresh `bench_delivery_fanout` database migrated by the compiled CLI, Redis db 13 (emptied), a
// self-signed HTTPS receiver on 127.0.0.1 (the worker trusts it through NODE_EXTRA_CA_CERTS), webhooks created
// through the compiled API with TARGET_ALLOW_CIDRS=127.0.0.1/32, then the compiled worker with the same allow list.
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Redis from 'ioredis';
import pg from 'pg';
import {
  cli,
  createWebhooksThroughApi,
  deliveryBenchEnv,
  percentile,
  rssMb,
  selfSignedCert,
  sleep,
  startDeliveryWorker,
  unwind,
} from './support.mjs';

const EVENTS = Number(process.env.BENCH_DELIVERY_EVENTS ?? 6000);
const WEBHOOKS = 5;
const RECEIVER_PORT = 4601;
const API_PORT = 4602;
const REDIS_URL = 'redis://127.0.0.1:6379/13';
const STREAM = 'bench:delivery:events';
const TARGET = 1000;

export default async function run({ root, log }) {
  const signing = await import(pathToFileURL(join(root, 'dist/libs/signing/src/index.js')).href);
  const dir = mkdtempSync(join(tmpdir(), 'bench-delivery-'));
  const stops = [];
  const redis = new Redis(REDIS_URL);
  try {
    const { env, databaseUrl } = await deliveryBenchEnv(root, {
      database: 'bench_delivery_fanout',
      redisUrl: REDIS_URL,
      redis,
      stream: STREAM,
    });

    // The receiver: HTTPS with a certificate for 127.0.0.1, made now.
    const tls = selfSignedCert(dir);
    const secrets = new Map();
    const latencies = [];
    const seen = new Set();
    let received = 0;
    let duplicates = 0;
    let badSignatures = 0;
    const server = https.createServer(
      {
        key: tls.key,
        cert: tls.cert,
        keepAliveTimeout: 30_000,
      },
      (req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          received++;
          const deliveryId = req.headers['anchor-delivery-id'];
          if (seen.has(deliveryId)) duplicates++;
          seen.add(deliveryId);
          // Verify a sample: verifying every request would bench the receiver rather than the service.
          if (received % 10 === 0) {
            const secret = secrets.get(req.url);
            const v = signing.verifyWebhookSignature({
              headers: req.headers,
              rawBody: body,
              secrets: secret ?? [],
            });
            if (!v.ok) badSignatures++;
          }
          const sentAt = JSON.parse(body).data?.sent_at;
          if (typeof sentAt === 'number') latencies.push(Date.now() - sentAt);
          res.end('ok');
        });
      },
    );
    await new Promise((resolve) => server.listen(RECEIVER_PORT, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => server.close(resolve)));
    server.on('connection', (s) => stops.push(async () => s.destroy()));

    // Webhooks through the real API (the allow list admits the loopback receiver).
    const apiKey = cli(root, ['api-keys', 'create', '--name', 'bench'], env);
    const paths = Array.from({ length: WEBHOOKS }, (_, i) => `/hook/${i}`);
    const created = await createWebhooksThroughApi(
      root,
      env,
      API_PORT,
      log,
      paths.map((path) => ({ apiKey: apiKey.api_key, url: `https://127.0.0.1:${RECEIVER_PORT}${path}` })),
    );
    paths.forEach((path, i) => secrets.set(path, created[i]));

    const worker = await startDeliveryWorker(root, env, tls.certPath, log);
    stops.push(() => worker.stop());

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    stops.push(() => db.end());
    const succeeded = async () =>
      (await db.query(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'succeeded'`)).rows[0].n;

    const publish = async (count, offset) => {
      const pipeline = redis.pipeline();
      for (let i = 0; i < count; i++) {
        const event = {
          type: 'task.completed',
          project_id: apiKey.project_id,
          text: `task ${offset + i} completed`,
          data: { task_id: `task-${offset + i}`, sent_at: Date.now() },
        };
        pipeline.xadd(STREAM, '*', 'event', JSON.stringify(event));
      }
      await pipeline.exec();
    };
    const waitFor = async (expected, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const n = await succeeded();
        if (n >= expected) return n;
        if (Date.now() > deadline) throw new Error(`only ${n} of ${expected} deliveries succeeded in time`);
        await sleep(100);
      }
    };

    // Warm-up: boots the consumer group, fills the connection pools, JIT-compiles the hot path.
    const warm = 200;
    await publish(warm, 0);
    await waitFor(warm * WEBHOOKS, 60_000);
    latencies.length = 0;
    log(`warm-up done (${warm * WEBHOOKS} deliveries)`);

    const expected = (warm + EVENTS) * WEBHOOKS;
    const started = Date.now();
    await publish(EVENTS, warm);
    const publishedMs = Date.now() - started;
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMb(worker.child.pid) ?? 0)), 250);
    try {
      await waitFor(expected, 300_000);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    const measured = EVENTS * WEBHOOKS;
    const rate = Math.round(measured / seconds);
    const notSucceeded = (
      await db.query(`SELECT count(*)::int AS n FROM deliveries WHERE status <> 'succeeded'`)
    ).rows[0].n;
    log(
      `${measured} deliveries in ${seconds.toFixed(2)} s (${rate}/s); events published in ${publishedMs} ms`,
    );

    return {
      name: 'delivery',
      metrics: [
        {
          name: 'signed deliveries per second (fan-out, recorded)',
          value: rate,
          unit: '/s',
          target: `>= ${TARGET}`,
          pass: rate >= TARGET,
        },
        { name: 'deliveries measured', value: measured, unit: 'count' },
        { name: 'end-to-end latency p50', value: percentile(latencies, 50), unit: 'ms' },
        { name: 'end-to-end latency p99', value: percentile(latencies, 99), unit: 'ms' },
        {
          name: 'duplicate deliveries',
          value: duplicates,
          unit: 'count',
          target: '0',
          pass: duplicates === 0,
        },
        {
          name: 'sampled signatures rejected',
          value: badSignatures,
          unit: 'count',
          target: '0',
          pass: badSignatures === 0,
        },
        {
          name: 'rows not succeeded',
          value: notSucceeded,
          unit: 'count',
          target: '0',
          pass: notSucceeded === 0,
        },
        { name: 'worker peak RSS', value: peakRss, unit: 'MB' },
      ],
      notes: [
        `${EVENTS} events x ${WEBHOOKS} webhooks over HTTPS keep-alive to 127.0.0.1, after a ${warm}-event warm-up; ` +
          `time runs from the first XADD until the last delivery row is recorded as succeeded; latency is from XADD to arrival.`,
      ],
    };
  } finally {
    await unwind(stops);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Run directly: node bench/delivery.bench.mjs
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = join(import.meta.dirname, '..');
  const r = await run({ root, log: (l) => process.stderr.write(`${l}\n`), results: [] });
  console.log(JSON.stringify(r, null, 2));
}
