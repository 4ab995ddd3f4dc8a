// Shared helpers of the benchmarks: processes, databases, keys and percentiles.
import { spawn, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { readFileSync } from 'node:fs';
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
 * The node flags and entry point of a package.json start script (`node [flags] entry`), so that a benchmark
 * runs a process exactly as it is deployed.
 */
export function startScript(root, name) {
  const script = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts[name];
  const words = script.trim().split(/\s+/);
  if (words[0] !== 'node' || words.length < 2)
    throw new Error(`${name} is not "node [flags] entry": ${script}`);
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

/** Resident memory of a process in MB (Linux /proc). */
export function rssMb(pid) {
  try {
    const status = execFileSync('cat', [`/proc/${pid}/status`]).toString();
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return null;
  }
}

/** The p-th percentile (0..100) of numbers. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export { sleep };
