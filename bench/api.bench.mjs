// The API side by side with the thin reference stack (../shared/bench/baseline-server.mjs, node:http + pg) in
// one run on this machine: create and rotate-secret throughput and p99 (the reference's own load driver, 8 s at
// 32 connections, the two stacks taking turns for BENCH_ROUNDS rounds) with the CPU each stack and Postgres spent
// per request, GET one /
// GET list p99 at 32 connections, requests with a wrong API key (answered 401, and what they cost Postgres), and
// the API's resident memory sampled during a minute of mixed load. Ports
// 4700-4799, databases bench_prod_*, Redis db 14 unless BENCH_REDIS_URL says otherwise.
import autocannon from 'autocannon';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  cli,
  cpuPerRequest,
  freshDatabase,
  postgresTransactions,
  rssMb,
  sleep,
  startProcess,
  startScript,
} from './support.mjs';

const BASELINE_PORT = 4701;
const API_PORT = 4702;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/14';
const SHARED = process.env.BENCH_SHARED ?? '/work/shared/bench';
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 8);
// Both stacks first get the same load for this long, unmeasured: until V8 has optimised the hot code, a fresh
// process measures its compiler (the product's larger code base takes longer to warm up than the reference's).
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const RSS_SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? 60);
// The stacks take turns, reference then product, this many times: the machine's speed drifts within minutes, and
// one measurement of each, one after the other, let that drift into the ratio.
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const CONNECTIONS = 32;
const STATS_LAG_MS = 11_000;

const run = promisify(execFile);

/** Resolves when something listens on the port. */
async function listening(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Requests one run of the load driver made (creates and rotations). */
const requestsOf = (r) => r.create.total + (r.rotate?.total ?? 0);

const mean = (values) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);

/**
 * One stack's rounds as one figure: mean throughput and mean p99 of each phase, and the CPU per request over all
 * its measured requests.
 */
function combine(rounds) {
  const phase = (name) => {
    const runs = rounds.map((r) => r.result[name]).filter(Boolean);
    if (runs.length === 0) return null;
    const sum = (k) => runs.reduce((a, r) => a + r[k], 0);
    return {
      rps: mean(runs.map((r) => r.rps)),
      p50: mean(runs.map((r) => r.p50)),
      p99: mean(runs.map((r) => r.p99)),
      non2xx: sum('non2xx'),
      errors: sum('errors'),
      total: sum('total'),
    };
  };
  const n = rounds.reduce((a, r) => a + requestsOf(r.result), 0);
  const weighted = (k) =>
    rounds.some((r) => r[k] === null)
      ? null
      : Math.round(rounds.reduce((a, r) => a + r[k] * requestsOf(r.result), 0) / n);
  return {
    result: { create: phase('create'), rotate: phase('rotate') },
    processUs: weighted('processUs'),
    postgresUs: weighted('postgresUs'),
  };
}

/** The reference's load driver: {create:{rps,p50,p99,non2xx}, rotate:{...}}. */
async function load(refDir, base, keys, seconds = LOAD_SECONDS) {
  const { stdout } = await run(
    process.execPath,
    [join(refDir, 'load.mjs'), base, keys.join(','), String(seconds), String(CONNECTIONS)],
    {
      maxBuffer: 1 << 24,
    },
  );
  return JSON.parse(stdout.trim().split('\n').pop());
}

function cannon(opts) {
  return new Promise((resolve, reject) =>
    autocannon({ connections: CONNECTIONS, ...opts }, (err, r) => (err ? reject(err) : resolve(r))),
  );
}

const ratio = (a, b) => (b ? Math.round((a / b) * 100) / 100 : null);

export default async function runBench({ root, log }) {
  // /work/shared has no node_modules: run the reference from a git-ignored copy so pg and autocannon resolve here.
  const refDir = join(root, 'bench/results/ref');
  mkdirSync(refDir, { recursive: true });
  for (const f of ['baseline-server.mjs', 'load.mjs']) {
    if (!existsSync(join(SHARED, f))) throw new Error(`${join(SHARED, f)} not found (set BENCH_SHARED)`);
    copyFileSync(join(SHARED, f), join(refDir, f));
  }
  const baselineDb = await freshDatabase('bench_prod_baseline');
  const productDb = await freshDatabase('bench_prod_product');
  const env = {
    DATABASE_URL: productDb,
    REDIS_URL,
    PORT: String(API_PORT),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    SECRETS_ENCRYPTION_KEYS: `bench:${Buffer.alloc(32, 7).toString('base64')}`,
    MAX_WEBHOOKS_PER_PROJECT: '1000000',
    // On, but out of reach: the benchmark pays for the Redis round trip of the limiter, as production does.
    RATE_LIMIT_PER_MINUTE: '100000000',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
  };
  const notes = [];
  const procs = [];
  try {
    // Reference stack.
    const baselineChild = await startProcess(
      root,
      join(refDir, 'baseline-server.mjs'),
      { PORT: String(BASELINE_PORT), DATABASE_URL: baselineDb },
      null,
      log,
    );
    procs.push(baselineChild);
    await listening(BASELINE_PORT);
    const baseUrl = `http://127.0.0.1:${BASELINE_PORT}`;
    const baseKeys = [];
    for (let i = 0; i < 4; i++)
      baseKeys.push((await (await fetch(`${baseUrl}/admin/api-keys`, { method: 'POST' })).json()).key);
    log(`baseline warm-up (${WARMUP_SECONDS} s x 2)`);
    if (WARMUP_SECONDS > 0) await load(refDir, baseUrl, baseKeys, WARMUP_SECONDS);

    // Product, started beside the reference (an idle stack costs nothing measurable).
    cli(root, ['migrate'], env);
    const apiKeys = [];
    for (let i = 0; i < 4; i++)
      apiKeys.push(cli(root, ['api-keys', 'create', '--name', `bench-${i}`], env).api_key);
    const readKey = cli(root, ['api-keys', 'create', '--name', 'bench-read'], env).api_key;
    // As deployed: the node flags of `npm run start:api` (the same as the container's command).
    const apiCommand = startScript(root, 'start:api');
    const api = await startProcess(
      root,
      apiCommand.entry,
      env,
      `http://127.0.0.1:${API_PORT}/health/ready`,
      log,
      apiCommand.nodeArgs,
    );
    procs.push(api);
    const apiUrl = `http://127.0.0.1:${API_PORT}`;
    log(`product warm-up (${WARMUP_SECONDS} s x 2)`);
    if (WARMUP_SECONDS > 0) await load(refDir, apiUrl, apiKeys, WARMUP_SECONDS);

    // CPU per request as well as throughput: on a machine the load saturates, the stack that spends less CPU
    // per request (in its process and in Postgres) gets more requests through.
    const baselineRounds = [];
    const productRounds = [];
    for (let round = 1; round <= ROUNDS; round++) {
      log(
        `round ${round} of ${ROUNDS}: reference, then product (${LOAD_SECONDS} s x 2 each at ${CONNECTIONS} connections)`,
      );
      baselineRounds.push(
        await cpuPerRequest(baselineChild.child.pid, () => load(refDir, baseUrl, baseKeys), requestsOf),
      );
      productRounds.push(await cpuPerRequest(api.child.pid, () => load(refDir, apiUrl, apiKeys), requestsOf));
    }
    await baselineChild.stop();
    const baselineCpu = combine(baselineRounds);
    const productCpu = combine(productRounds);
    const baseline = baselineCpu.result;
    const product = productCpu.result;

    // Reads: one project with five webhooks (the default live limit).
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${apiUrl}/v1/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anchor-api-key': readKey },
        body: JSON.stringify({
          url: `https://read${i}.example.com/hook`,
          subscribed_events: ['task.completed'],
        }),
      });
      ids.push((await r.json()).id);
    }
    const headers = { 'anchor-api-key': readKey };
    // Each read is warmed up like the writes above (unmeasured, same length): the read routes' code has not run
    // yet, and its first second would measure V8 compiling it rather than the route.
    const read = async (url) => {
      if (WARMUP_SECONDS > 0) await cannon({ url, headers, duration: WARMUP_SECONDS });
      return cannon({ url, headers, duration: LOAD_SECONDS });
    };
    log(`reads: warm-up (${WARMUP_SECONDS} s), then load (${LOAD_SECONDS} s) of GET one, then of GET list`);
    const getOne = await read(`${apiUrl}/v1/webhooks/${ids[0]}`);
    const getList = await read(`${apiUrl}/v1/webhooks`);

    // A client looping on a wrong key (a revoked or mistyped one): refused from the API's memory, not Postgres.
    log(`wrong key: load (${LOAD_SECONDS} s) of GET list with a key that does not exist`);
    // A session that goes idle reports its transactions to Postgres's statistics up to 10 s later: let the reads'
    // counts land before the first reading, and this load's before the second.
    await sleep(STATS_LAG_MS);
    const transactions0 = await postgresTransactions(productDb);
    const wrongKey = await cannon({
      url: `${apiUrl}/v1/webhooks`,
      headers: { 'anchor-api-key': `ak_${'0'.repeat(43)}` },
      duration: LOAD_SECONDS,
    });
    await sleep(STATS_LAG_MS);
    const wrongKeyTransactions = (await postgresTransactions(productDb)) - transactions0;
    const refused = wrongKey.statusCodeStats?.['401']?.count ?? 0;
    const notRefused = wrongKey.requests.total - refused + wrongKey.errors;

    // Memory: a minute of mixed load (reads, creates, rotations), RSS sampled every second.
    log(`memory: ${RSS_SECONDS} s of mixed load`);
    const rss = [];
    const sampler = setInterval(() => rss.push(rssMb(api.child.pid)), 1000);
    let n = 0;
    await cannon({
      url: apiUrl,
      duration: RSS_SECONDS,
      requests: [
        {
          setupRequest: (req) => {
            const i = n++;
            const key = apiKeys[i % apiKeys.length];
            if (i % 4 === 0)
              return {
                ...req,
                method: 'POST',
                path: '/v1/webhooks',
                headers: { 'content-type': 'application/json', 'anchor-api-key': key },
                body: JSON.stringify({
                  url: `https://mem${i % 89}.example.com/h/${i}`,
                  subscribed_events: ['task.completed'],
                }),
              };
            if (i % 4 === 1)
              return {
                ...req,
                method: 'POST',
                path: `/v1/webhooks/${ids[i % ids.length]}/rotate-secret`,
                headers,
                body: undefined,
              };
            return {
              ...req,
              method: 'GET',
              path: `/v1/webhooks/${ids[i % ids.length]}`,
              headers,
              body: undefined,
            };
          },
        },
      ],
    });
    clearInterval(sampler);
    const rssFinal = rssMb(api.child.pid);
    const rssMax = Math.max(...rss.filter((v) => v !== null));

    const createRps = ratio(product.create.rps, baseline.create.rps);
    const rotateRps = ratio(product.rotate?.rps, baseline.rotate?.rps);
    const createP99 = ratio(product.create.p99, baseline.create.p99);
    const rotateP99 = ratio(product.rotate?.p99, baseline.rotate?.p99);
    const perRound = (rounds) =>
      rounds.map((r) => `${r.result.create.rps}/${r.result.rotate?.rps ?? '-'} req/s`).join(', ');
    notes.push(`baseline (mean of ${ROUNDS} rounds): ${JSON.stringify(baseline)}`);
    notes.push(`product (mean of ${ROUNDS} rounds):  ${JSON.stringify(product)}`);
    notes.push(
      `create/rotate per round: reference ${perRound(baselineRounds)}; product ${perRound(productRounds)}`,
    );
    notes.push(
      `GET one non2xx=${getOne.non2xx} errors=${getOne.errors}; GET list non2xx=${getList.non2xx} errors=${getList.errors}`,
    );
    return {
      name: 'api',
      metrics: [
        { name: 'baseline create rps', value: baseline.create.rps, unit: 'req/s' },
        { name: 'product create rps', value: product.create.rps, unit: 'req/s' },
        { name: 'create rps ratio', value: createRps, unit: 'x', target: '>= 0.8', pass: createRps >= 0.8 },
        { name: 'baseline create p99', value: baseline.create.p99, unit: 'ms' },
        { name: 'product create p99', value: product.create.p99, unit: 'ms' },
        { name: 'create p99 ratio', value: createP99, unit: 'x', target: '<= 1.5', pass: createP99 <= 1.5 },
        { name: 'baseline rotate rps', value: baseline.rotate?.rps ?? null, unit: 'req/s' },
        { name: 'product rotate rps', value: product.rotate?.rps ?? null, unit: 'req/s' },
        { name: 'rotate rps ratio', value: rotateRps, unit: 'x', target: '>= 0.8', pass: rotateRps >= 0.8 },
        { name: 'baseline rotate p99', value: baseline.rotate?.p99 ?? null, unit: 'ms' },
        { name: 'product rotate p99', value: product.rotate?.p99 ?? null, unit: 'ms' },
        { name: 'rotate p99 ratio', value: rotateP99, unit: 'x', target: '<= 1.5', pass: rotateP99 <= 1.5 },
        { name: 'baseline process CPU per request', value: baselineCpu.processUs, unit: 'µs' },
        { name: 'product API CPU per request', value: productCpu.processUs, unit: 'µs' },
        { name: 'Postgres CPU per baseline request', value: baselineCpu.postgresUs, unit: 'µs' },
        { name: 'Postgres CPU per product request', value: productCpu.postgresUs, unit: 'µs' },
        {
          name: 'non-2xx (product create+rotate)',
          value: product.create.non2xx + (product.rotate?.non2xx ?? 0),
          unit: '',
          target: '0',
          pass: product.create.non2xx + (product.rotate?.non2xx ?? 0) === 0,
        },
        { name: 'GET /v1/webhooks/{id} rps', value: Math.round(getOne.requests.average), unit: 'req/s' },
        {
          name: 'GET /v1/webhooks/{id} p99',
          value: getOne.latency.p99,
          unit: 'ms',
          target: '< 10',
          pass: getOne.latency.p99 < 10 && getOne.non2xx === 0,
        },
        { name: 'GET /v1/webhooks (5) rps', value: Math.round(getList.requests.average), unit: 'req/s' },
        {
          name: 'GET /v1/webhooks (5) p99',
          value: getList.latency.p99,
          unit: 'ms',
          target: '< 10',
          pass: getList.latency.p99 < 10 && getList.non2xx === 0,
        },
        { name: 'wrong API key: 401 rps', value: Math.round(wrongKey.requests.average), unit: 'req/s' },
        { name: 'wrong API key: 401 p99', value: wrongKey.latency.p99, unit: 'ms' },
        {
          name: 'wrong API key: answers other than 401',
          value: notRefused,
          unit: '',
          target: '0',
          pass: notRefused === 0,
        },
        {
          name: 'wrong API key: Postgres transactions per 1,000 requests',
          value: refused ? Math.round((wrongKeyTransactions * 1000 * 100) / refused) / 100 : null,
          unit: '',
        },
        {
          name: `API RSS max over ${RSS_SECONDS} s`,
          value: rssMax,
          unit: 'MB',
          target: '< 200',
          pass: rssMax < 200,
        },
        { name: 'API RSS after load', value: rssFinal, unit: 'MB', target: '< 200', pass: rssFinal < 200 },
      ],
      notes,
    };
  } finally {
    for (const p of procs) await p.stop();
  }
}
