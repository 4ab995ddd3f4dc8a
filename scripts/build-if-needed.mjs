// Builds the project when dist/ is missing or older than any source file or build setting, so `npm start`
// and `npm run cli` work on a fresh clone and stay fast on later runs (and in the container image, which has
// dist/ and no sources).
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const marker = join(root, 'dist/apps/cli/src/main.js');
// Written by `npm run build` when it has finished. The compiled files cannot tell when the last build ran: the
// build is incremental, and tsc leaves the output of an unchanged source as it was (its old time included).
const stamp = join(root, 'dist/.build-stamp');

// A directory's own time counts too: removing or renaming a source changes nothing else.
function newest(dir) {
  let t = statSync(dir).mtimeMs;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

// The container image holds dist/ without the sources: nothing to compare, nothing to build.
const newestIn = (dir) => (existsSync(dir) ? newest(dir) : 0);
const code = Math.max(newestIn(join(root, 'apps')), newestIn(join(root, 'libs')));
if (!existsSync(marker) && code === 0) {
  process.stderr.write('dist/ is missing and there are no sources (apps/, libs/) to build it from\n');
  process.exit(1);
}
// What the compiler is told, and the compiler and libraries themselves (an upgrade changes the lock file).
const settings = ['tsconfig.json', 'tsconfig.build.json', 'nest-cli.json', 'package-lock.json']
  .map((name) => join(root, name))
  .filter((path) => existsSync(path))
  .map((path) => statSync(path).mtimeMs);
const sources = Math.max(code, ...settings);
const builtAt = existsSync(stamp)
  ? statSync(stamp).mtimeMs
  : existsSync(marker)
    ? statSync(marker).mtimeMs
    : 0;
if (!existsSync(marker) || builtAt < sources) {
  process.stderr.write('building…\n');
  execSync('npm run build --silent', { cwd: root, stdio: 'inherit' });
}
