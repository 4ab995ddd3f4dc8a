// Fairness of the delivery worker between projects, end to end on the compiled service: how long a project whose
// receiver answers waits for its deliveries while new projects burst events at receivers that never answer.
//
// An attempt to a receiver that hangs holds one of the worker's slots until it times out (10 s). The worker must
// keep slots for the other projects from the first second on, before any of those requests could be seen taking
// long. Four rounds, each measured by the latency (from XADD to arrival at the receiver) of 20 events of a project
// whose receiver answers at once and whose deliveries ran before:
//   1. one new project publishes 500 events to a receiver that hangs; the 20 follow 1 s later;
//   2. three more new projects do the same, 1 s apart; the 20 follow 1 s after the last;
//   3. the same project publishes 500 events of another type, for its own second webhook, whose receiver hangs
//      and which had no delivery before; the 20 follow 1 s later;
//   4. another project's receiver answers 20 events, then hangs, and that project publishes 500 more; the 20
//      follow 1 s later.
//
// Setup: a fresh `bench_delivery_fairness` database migrated by the compiled CLI, Redis db 10 (emptied), a
// self-signed HTTPS receiver on 127.0.0.1 and a TCP listener that accepts connections and never answers (not even
// the TLS handshake), webhooks created through the compiled API with TARGET_ALLOW_CIDRS=127.0.0.1/32, then the
// compiled worker with the same allow list.
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import {
  cli,
  createWebhooksThroughApi,
  deliveryBenchEnv,
  percentile,
  selfSignedCert,
  sleep,
  startDeliveryWorker,
  unwind,
} from './support.mjs';

const BURST = Number(process.env.BENCH_FAIRNESS_BURST ?? 500);
const FOLLOWERS = 20;
const LATE_PROJECTS = 3;
const RECEIVER_PORT = 4611;
const HOLE_PORT = 4612;
const API_PORT = 4613;
const TURN_PORT = 4614;
const REDIS_URL = 'redis://127.0.0.1:6379/10';
const STREAM = 'bench:fairness:events';
/** Below the 10 s an attempt to a receiver that hangs holds its slot: nothing waited for one of them to end. */
const TARGET_MS = 2000;

export default async function run({ root, log }) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-fairness-'));
  const stops = [];
  const redis = new Redis(REDIS_URL);
  try {
    const { env } = await deliveryBenchEnv(root, {
      database: 'bench_delivery_fairness',
      redisUrl: REDIS_URL,
      redis,
      stream: STREAM,
    });

    // The receiver that answers: records when each task's delivery arrived.
    const tls = selfSignedCert(dir);
    const arrived = new Map();
    const server = https.createServer({ ...tls, keepAliveTimeout: 30_000 }, (req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const data = JSON.parse(Buffer.concat(chunks).toString('utf8')).data ?? {};
        if (typeof data.task_id === 'string' && !arrived.has(data.task_id))
          arrived.set(data.task_id, Date.now() - data.sent_at);
        res.end('ok');
      });
    });
    await new Promise((resolve) => server.listen(RECEIVER_PORT, '127.0.0.1', resolve));
    stops.push(() => new Promise((resolve) => server.close(resolve)));
    server.on('connection', (s) => stops.push(async () => s.destroy()));

    // Receivers that never answer: one from the start, one that passes connections on to the receiver that
    // answers until it is turned. The connections they hold are counted together.
    const hung = new Set();
    let mostHung = 0;
    const hanging = async (port, passTo) => {
      let passing = passTo !== undefined;
      const passed = new Set();
      const listener = net.createServer((s) => {
        s.on('error', () => undefined);
        if (passing) {
          const upstream = net.connect(passTo, '127.0.0.1');
          upstream.on('error', () => undefined);
          s.pipe(upstream).pipe(s);
          passed.add(s);
          s.on('close', () => (passed.delete(s), upstream.destroy()));
          upstream.on('close', () => s.destroy());
          return;
        }
        hung.add(s);
        // Reads (and drops) what arrives, so that a connection the worker closes is seen closing.
        s.resume();
        mostHung = Math.max(mostHung, hung.size);
        s.on('close', () => hung.delete(s));
      });
      await new Promise((resolve) => listener.listen(port, '127.0.0.1', resolve));
      return {
        turn: () => {
          passing = false;
          for (const s of passed) s.destroy();
        },
        close: () => {
          listener.close();
          for (const s of [...hung, ...passed]) s.destroy();
        },
      };
    };
    const hole = await hanging(HOLE_PORT);
    const turning = await hanging(TURN_PORT, RECEIVER_PORT);

    // Projects and their webhooks through the real API.
    const healthy = cli(root, ['api-keys', 'create', '--name', 'answers'], env);
    const bursting = Array.from({ length: 1 + LATE_PROJECTS }, (_, i) =>
      cli(root, ['api-keys', 'create', '--name', `hangs-${i}`], env),
    );
    const turner = cli(root, ['api-keys', 'create', '--name', 'answers-then-hangs'], env);
    await createWebhooksThroughApi(root, env, API_PORT, log, [
      { apiKey: healthy.api_key, url: `https://127.0.0.1:${RECEIVER_PORT}/answers` },
      { apiKey: healthy.api_key, url: `https://127.0.0.1:${HOLE_PORT}/hangs`, events: ['task.failed'] },
      ...bursting.map((key) => ({ apiKey: key.api_key, url: `https://127.0.0.1:${HOLE_PORT}/hangs` })),
      { apiKey: turner.api_key, url: `https://127.0.0.1:${TURN_PORT}/turns` },
    ]);

    const worker = await startDeliveryWorker(root, env, tls.certPath, log);
    stops.push(() => worker.stop());
    // Stopped before the worker (stops run in reverse): its attempts then end at once instead of timing out.
    stops.push(async () => {
      hole.close();
      turning.close();
    });

    let published = 0;
    const publish = async (key, count, type = 'task.completed') => {
      const ids = [];
      const pipeline = redis.pipeline();
      for (let i = 0; i < count; i++) {
        const taskId = `task-${published++}`;
        ids.push(taskId);
        const event = {
          type,
          project_id: key.project_id,
          text: `${taskId} completed`,
          data: { task_id: taskId, sent_at: Date.now() },
        };
        pipeline.xadd(STREAM, '*', 'event', JSON.stringify(event));
      }
      await pipeline.exec();
      return ids;
    };
    /** Latencies of events of `key`'s project, once all have arrived. */
    const arrival = async (key, count) => {
      const ids = await publish(key, count);
      const deadline = Date.now() + 120_000;
      while (!ids.every((id) => arrived.has(id))) {
        if (Date.now() > deadline) throw new Error('the deliveries did not arrive in 120 s');
        await sleep(20);
      }
      return ids.map((id) => arrived.get(id));
    };
    /** Latencies of the healthy project's next 20 events. */
    const followers = () => arrival(healthy, FOLLOWERS);

    // Warm-up: boots the consumer group and proves the healthy project's receiver.
    await followers();
    const unloaded = await followers();
    log(`unloaded: p50 ${percentile(unloaded, 50)} ms, max ${Math.max(...unloaded)} ms`);

    await publish(bursting[0], BURST);
    await sleep(1000);
    const one = await followers();
    const hungOne = mostHung;
    log(
      `one burst: p50 ${percentile(one, 50)} ms, max ${Math.max(...one)} ms; ${hungOne} attempts hung at most`,
    );

    for (const key of bursting.slice(1)) {
      await publish(key, BURST);
      await sleep(1000);
    }
    const several = await followers();
    log(
      `${LATE_PROJECTS} more bursts: p50 ${percentile(several, 50)} ms, max ${Math.max(...several)} ms; ` +
        `${mostHung} attempts hung at most`,
    );

    await publish(healthy, BURST, 'task.failed');
    await sleep(1000);
    const own = await followers();
    log(
      `own second webhook's burst: p50 ${percentile(own, 50)} ms, max ${Math.max(...own)} ms; ` +
        `${mostHung} attempts hung at most`,
    );

    await arrival(turner, FOLLOWERS);
    turning.turn();
    await publish(turner, BURST);
    await sleep(1000);
    const turned = await followers();
    log(
      `burst to a receiver that answered ${FOLLOWERS} events, then hangs: p50 ${percentile(turned, 50)} ms, ` +
        `max ${Math.max(...turned)} ms; ${mostHung} attempts hung at most`,
    );

    const worst = (values) => Math.max(...values);
    return {
      name: 'delivery-fairness',
      metrics: [
        { name: 'healthy project, unloaded: latency max', value: worst(unloaded), unit: 'ms' },
        {
          name: 'healthy project after 1 new project bursts to a hung receiver: latency max',
          value: worst(one),
          unit: 'ms',
          target: `< ${TARGET_MS}`,
          pass: worst(one) < TARGET_MS,
        },
        {
          name: `healthy project after ${LATE_PROJECTS} more such bursts: latency max`,
          value: worst(several),
          unit: 'ms',
          target: `< ${TARGET_MS}`,
          pass: worst(several) < TARGET_MS,
        },
        {
          name: 'the same project, after a burst to its own new webhook that hangs: latency max',
          value: worst(own),
          unit: 'ms',
          target: `< ${TARGET_MS}`,
          pass: worst(own) < TARGET_MS,
        },
        {
          name: `after a burst to a receiver that answered ${FOLLOWERS} events, then hangs: latency max`,
          value: worst(turned),
          unit: 'ms',
          target: `< ${TARGET_MS}`,
          pass: worst(turned) < TARGET_MS,
        },
        { name: 'attempts hanging at once, most (after 1 burst)', value: hungOne, unit: 'count' },
        { name: 'attempts hanging at once, most (all bursts)', value: mostHung, unit: 'count' },
      ],
      notes: [
        `${BURST} events per burst to a receiver that accepts connections and never answers; ` +
          `latency is from XADD to arrival of ${FOLLOWERS} events of a project whose receiver answers, ` +
          `published 1 s after the last burst; the worker runs 200 attempts at a time, each up to 10 s.`,
      ],
    };
  } finally {
    await unwind(stops);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}
