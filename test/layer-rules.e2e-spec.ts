import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

/**
 * The architecture's import rules live in `eslint.config.mjs` so that `npm run lint` holds them by itself. Each
 * case lints one import, as if written in a real file of the layer, with the project's own configuration, so that a
 * rule that stops matching (a pattern that misses relative paths, say) fails here instead of letting code through.
 */
describe('the import rules of eslint.config.mjs', () => {
  const root = join(__dirname, '..');
  /** Lints each case's import line in its file with ESLint's API, in Node itself (Jest cannot load an ES module config). */
  const LINT = `
    import { ESLint } from 'eslint';
    const cases = JSON.parse(await new Promise((done) => {
      let text = '';
      process.stdin.on('data', (chunk) => (text += chunk)).on('end', () => done(text));
    }));
    const eslint = new ESLint();
    const out = [];
    for (const [file, specifier] of cases) {
      const code = "import * as imported from '" + specifier + "';\\nexport const used = imported;\\n";
      const [result] = await eslint.lintText(code, { filePath: file });
      out.push(result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message));
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const verdicts = new Map<string, string[]>();

  /** The messages of no-restricted-imports for one import line in `file`. */
  const restricted = (file: string, specifier: string): string[] => {
    const messages = verdicts.get(`${file} ${specifier}`);
    if (!messages) throw new Error(`no verdict for ${file} ${specifier}`);
    return messages;
  };

  const API = 'apps/api/src/api.app.ts';
  const WORKER = 'apps/worker/src/delivery/ssrf-safe.sender.ts';
  const VALIDATION = 'libs/validation/src/json-depth.rule.ts';
  const CONFIG = 'libs/config/src/boot-logging.ts';
  const DOMAIN = 'libs/domain/src/clock.ts';
  const PERSISTENCE = 'libs/persistence/src/unavailable.ts';
  const QUEUE = 'libs/queue/src/with-timeout.ts';
  const E2E = 'test/support/rotation-seed.ts';

  const REFUSED: [string, string, string][] = [
    // A lib's sources, by alias or by any relative path, from an app, a lib or a test.
    [API, '@app/domain/clock', 'through its index only'],
    [API, '../../../libs/domain/src/clock', 'never by a path into its sources'],
    [VALIDATION, '../../persistence/src/database.service', 'never by a path into its sources'],
    [DOMAIN, '../../persistence/src', 'never by a path into its sources'],
    [E2E, '../../libs/queue/src/queue-connection', 'never by a path into its sources'],
    // TypeORM, anywhere but persistence.
    [API, 'typeorm', 'Only @app/persistence imports TypeORM'],
    [DOMAIN, 'typeorm', 'Only @app/persistence imports TypeORM'],
    [CONFIG, '@nestjs/typeorm', 'Only @app/persistence imports TypeORM'],
    [E2E, 'typeorm', 'Only @app/persistence imports TypeORM'],
    // Layers: apps never import apps; libs import only the libs below them.
    [WORKER, '../../../api/src/api.app', 'never import an app'],
    [VALIDATION, '@app/config', 'must not depend on @app/config'],
    [CONFIG, '@app/persistence', 'must not depend on @app/persistence'],
    [PERSISTENCE, '@app/domain', 'must not depend on @app/domain'],
    [QUEUE, '@app/audit', 'must not depend on @app/audit'],
  ];
  const ALLOWED: [string, string][] = [
    [API, '@app/domain'],
    [API, './http/error.filter'],
    [WORKER, '../../../../test/support/closed-port'],
    [DOMAIN, '@app/persistence'],
    [DOMAIN, '../errors/domain.error'],
    [CONFIG, '@app/validation'],
    [PERSISTENCE, 'typeorm'],
    [PERSISTENCE, './repositories/webhooks.repository'],
    [E2E, '../../apps/api/src/api.app'],
    [E2E, '@app/persistence'],
  ];

  beforeAll(() => {
    const cases = [...REFUSED, ...ALLOWED];
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', LINT], {
      cwd: root,
      input: JSON.stringify(cases.map(([file, specifier]) => [join(root, file), specifier])),
      encoding: 'utf8',
    });
    const found = JSON.parse(out) as string[][];
    cases.forEach(([file, specifier], i) => verdicts.set(`${file} ${specifier}`, found[i]));
  });

  it.each(REFUSED)('refuses, in %s, an import of %s', (file, specifier, message) => {
    expect(restricted(file, specifier)).toEqual([expect.stringContaining(message)]);
  });

  it.each(ALLOWED)('allows, in %s, an import of %s', (file, specifier) => {
    expect(restricted(file, specifier)).toEqual([]);
  });
});
