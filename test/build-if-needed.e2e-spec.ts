import { spawnSync } from 'node:child_process';
import { rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// `npm start`, `npm run cli` and `npm run bench` build first when a source is newer than the last build.
const root = join(__dirname, '..');
const buildIfNeeded = () => {
  const run = spawnSync(process.execPath, [join(root, 'scripts/build-if-needed.mjs')], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(run.status).toBe(0);
  return run.stderr;
};
/** The next run builds, and the one after it does not. */
const expectOneBuild = () => {
  expect(buildIfNeeded()).toMatch(/building/);
  expect(buildIfNeeded()).toBe('');
};

describe('build-if-needed', () => {
  it('builds once after a source changed, not again on every later run', () => {
    buildIfNeeded();
    // A source newer than the build whose compiled output does not change (a checkout, a touch, a comment): the
    // incremental build leaves the compiled files, their times included, as they were.
    const now = new Date();
    utimesSync(join(root, 'libs/config/src/index.ts'), now, now);
    expectOneBuild();
  }, 180_000);

  it('builds after a build setting changed or a source was removed', () => {
    buildIfNeeded();
    const now = new Date();
    utimesSync(join(root, 'tsconfig.build.json'), now, now);
    expectOneBuild();
    // Removed: its directory's time is all that changes.
    const removed = join(root, 'libs/config/src/removed-source.md');
    writeFileSync(removed, 'a file removed later\n');
    try {
      expect(buildIfNeeded()).toMatch(/building/);
    } finally {
      rmSync(removed, { force: true });
    }
    expectOneBuild();
  }, 300_000);
});
