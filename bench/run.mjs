// `npm run bench [-- name ...]`: runs every bench/*.bench.mjs (or the named ones) one after the other on
// this machine, prints one table and writes bench/results/latest.json (plus a timestamped copy).
//
// A benchmark module exports `default async function run(ctx)` returning
//   { name: string, metrics: [{ name, value, unit, target?: string, pass?: boolean }], notes?: string[] }
// where ctx = { root, log(line), results } (results: what earlier benchmarks of this run returned).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const wanted = process.argv.slice(2);
const known = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs'))
  .sort();
// A mistyped name would otherwise run nothing, print an empty table, overwrite latest.json and exit 0.
const unknown = wanted.filter((name) => !known.includes(`${name}.bench.mjs`));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown benchmark: ${unknown.join(', ')}\nusage: npm run bench [-- <name> ...], names: ${known
      .map((f) => f.replace('.bench.mjs', ''))
      .join(', ')}\n`,
  );
  process.exit(1);
}
const files = known.filter((f) => wanted.length === 0 || wanted.includes(f.replace('.bench.mjs', '')));

const log = (line) => process.stderr.write(`[bench] ${line}\n`);
const results = [];
for (const file of files) {
  log(`running ${file}`);
  const started = Date.now();
  try {
    const mod = await import(pathToFileURL(join(here, file)).href);
    const r = await mod.default({ root, log, results });
    results.push({ ...r, seconds: Math.round((Date.now() - started) / 100) / 10 });
  } catch (e) {
    log(`${file} failed: ${e?.stack ?? e}`);
    results.push({ name: file.replace('.bench.mjs', ''), error: String(e?.message ?? e), metrics: [] });
  }
}

const rows = [['benchmark', 'metric', 'value', 'unit', 'target', 'ok']];
for (const r of results) {
  if (r.error) rows.push([r.name, 'ERROR', r.error.slice(0, 60), '', '', 'no']);
  for (const m of r.metrics) {
    rows.push([
      r.name,
      m.name,
      String(m.value),
      m.unit ?? '',
      m.target ?? '',
      m.pass === undefined ? '' : m.pass ? 'yes' : 'NO',
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
const line = (row) => row.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(line(rows[0]));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows.slice(1)) console.log(line(row));
for (const r of results) for (const n of r.notes ?? []) console.log(`note (${r.name}): ${n}`);

const report = {
  at: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  results,
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'latest.json'), JSON.stringify(report, null, 2));
writeFileSync(
  join(here, 'results', `${report.at.replace(/[:.]/g, '-')}.json`),
  JSON.stringify(report, null, 2),
);
console.log(`\nwritten: bench/results/latest.json`);
const failed = results.some((r) => r.error || r.metrics.some((m) => m.pass === false));
process.exitCode = failed ? 1 : 0;
