// Shared helpers of the benchmarks: processes, databases, keys and percentiles.
import { spawn, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A fresh database (dropped first) on the local Postgres; returns its URL. */
export async function freshDatabase(
  name,
  base = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432',
) {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`bad database name ${name}`);
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  return `${base}/${name}`;
}

/**
 * Runs a compiled entry point of this project with `env` (and node flags `nodeArgs`); resolves when `readyUrl`
 * answers 200.
 */
export async function startProcess(root, entry, env, readyUrl, log, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, entry], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  if (readyUrl) {
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`${entry} exited: ${stderr}`);
      try {
        const r = await fetch(readyUrl);
        if (r.ok) break;
      } catch {
        /* not up yet */
      }
      await sleep(100);
      if (i === 199) throw new Error(`${entry} not ready: ${stderr}`);
    }
  }
  log?.(`started ${entry} (pid ${child.pid})`);
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && child.exitCode === null; i++) await sleep(50);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * The node flags and entry point of a package.json start script (`[exec] node [flags] entry`), so that a benchmark
 * runs a process exactly as it is deployed.
 */
export function startScript(root, name) {
  const script = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts[name];
  // `exec` replaces npm's shell with the process, so that npm passes signals on to it.
  const words = script
    .trim()
    .split(/\s+/)
    .filter((w, i) => !(i === 0 && w === 'exec'));
  if (words[0] !== 'node' || words.length < 2)
    throw new Error(`${name} is not "[exec] node [flags] entry": ${script}`);
  return { nodeArgs: words.slice(1, -1), entry: words[words.length - 1] };
}

/** Runs the project's CLI and returns its one JSON line. */
export function cli(root, args, env) {
  const out = execFileSync(process.execPath, ['dist/apps/cli/src/main.js', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
  });
  return JSON.parse(out.toString().trim().split('\n').pop());
}

/**
 * Resident memory of a process in MB, read straight from /proc (no child process per sample: samplers call it
 * often on a 2-core machine); null when it is gone.
 */
export function rssMb(pid) {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return null;
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; with `withChildren`, plus those of
 * its children that have exited and been waited for. Null when it is gone.
 */
export function cpuSeconds(pid, { withChildren = false } = {}) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: utime, stime, cutime and cstime
    // are the 14th to 17th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields.slice(11, withChildren ? 15 : 13).reduce((a, f) => a + Number(f), 0) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * CPU seconds used so far by Postgres: every running process named `postgres` (the server and its backends), and
 * the backends and workers that have exited, which the server has collected into its children's time. So the
 * figure only grows: a backend or an autovacuum worker that ends during a measurement does not take its CPU with it.
 */
export function postgresCpuSeconds() {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    total += cpuSeconds(entry, { withChildren: true }) ?? 0;
  }
  return total;
}

/**
 * Transactions Postgres has counted for the database at `url` so far (committed and rolled back, every session).
 * A session reports its counts when it goes idle, up to 10 s late (PGSTAT_IDLE_INTERVAL): read it that long after the
 * work ends.
 */
export async function postgresTransactions(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

/**
 * CPU spent by a process and by Postgres while `work` runs, per request: `work` resolves to its result, and
 * `count(result)` says how many requests it made.
 */
export async function cpuPerRequest(pid, work, count) {
  const proc0 = cpuSeconds(pid);
  const pg0 = postgresCpuSeconds();
  const result = await work();
  const n = count(result);
  const us = (seconds) => (n > 0 && seconds !== null ? Math.round((seconds * 1e6) / n) : null);
  const proc1 = cpuSeconds(pid);
  return {
    result,
    processUs: us(proc0 === null || proc1 === null ? null : proc1 - proc0),
    postgresUs: us(postgresCpuSeconds() - pg0),
  };
}

/**
 * A self-signed certificate for 127.0.0.1, made now in `dir` with openssl: `{ key, cert }` to serve HTTPS with, and
 * `certPath` for a worker's NODE_EXTRA_CA_CERTS.
 */
export function selfSignedCert(dir) {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(keyPath), cert: readFileSync(certPath), certPath };
}

/**
 * What a delivery benchmark runs on: a fresh database `database`, migrated by the compiled CLI, and the Redis
 * database of `redis` emptied. Returns the environment of its processes (events from `stream`, the loopback
 * receivers of 127.0.0.1 allowed as targets) and the database's URL.
 */
export async function deliveryBenchEnv(root, { database, redisUrl, redis, stream }) {
  const databaseUrl = await freshDatabase(database);
  await redis.flushdb();
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    EVENTS_STREAM: stream,
    TARGET_ALLOW_CIDRS: '127.0.0.1/32',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'development',
  };
  execFileSync(process.execPath, ['dist/apps/cli/src/main.js', 'migrate'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  return { env, databaseUrl };
}

/**
 * Creates webhooks (`[{ apiKey, url, events? }]`, subscribed to `events`, by default `task.completed`) through
 * the compiled API, started on
 * `port` for that and stopped after; returns their secrets, in order.
 */
export async function createWebhooksThroughApi(root, env, port, log, webhooks) {
  const api = await startProcess(
    root,
    'dist/apps/api/src/main.js',
    { ...env, PORT: String(port), HOST: '127.0.0.1' },
    `http://127.0.0.1:${port}/health/ready`,
    log,
  );
  try {
    const secrets = [];
    for (const { apiKey, url, events = ['task.completed'] } of webhooks) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anchor-api-key': apiKey },
        body: JSON.stringify({ url, subscribed_events: events }),
      });
      if (res.status !== 201) throw new Error(`webhook create: ${res.status} ${await res.text()}`);
      secrets.push((await res.json()).secret);
    }
    return secrets;
  } finally {
    await api.stop();
  }
}

/** Starts the compiled worker with `env`, trusting the certificate at `certPath` (the benchmark's receivers). */
export function startDeliveryWorker(root, env, certPath, log) {
  return startProcess(
    root,
    'dist/apps/worker/src/main.js',
    { ...env, NODE_EXTRA_CA_CERTS: certPath },
    null,
    log,
  );
}

/** Runs a benchmark's clean-up steps, the last registered first, each best effort. */
export async function unwind(stops) {
  for (const stop of stops.reverse()) {
    try {
      await stop();
    } catch {
      /* best effort */
    }
  }
}

/** The p-th percentile (0..100) of numbers. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export { sleep };
