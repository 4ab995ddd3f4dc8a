import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

// `npm run bench -- <name ...>` runs the named benchmarks; the table and bench/results/latest.json report them.
const root = join(__dirname, '..');
const latest = join(root, 'bench/results/latest.json');

describe('npm run bench', () => {
  it('refuses a benchmark name it does not know, naming those it has, and keeps the last results', () => {
    const before = existsSync(latest) ? statSync(latest).mtimeMs : undefined;
    const run = spawnSync(process.execPath, [join(root, 'bench/run.mjs'), 'no-such-bench'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('unknown benchmark: no-such-bench');
    expect(run.stderr).toContain('delivery-fairness');
    expect(existsSync(latest) ? statSync(latest).mtimeMs : undefined).toBe(before);
  });
});
