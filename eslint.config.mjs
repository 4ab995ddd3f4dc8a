// Type-checked lint for every app, lib and test, plus the dependency rules of the architecture:
// apps -> libs, never apps -> apps; libs only through their index; pure libs import nothing of ours; TypeORM only
// in persistence.
// The JavaScript files (benchmarks, scripts, this config) get ESLint's recommended rules, without types.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

const libs = ['config', 'validation', 'domain', 'persistence', 'queue', 'audit', 'signing'];
const apps = ['api', 'worker', 'cli'];

/**
 * Forbid every @app lib except `allowed`, deep imports into any lib (by alias or by relative path), TypeORM
 * outside persistence, and (unless `appsAllowed`) imports of apps.
 */
function boundaries(allowed, { appsAllowed = false, typeormAllowed = false } = {}) {
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          { group: ['@app/*/*'], message: 'Import a lib through its index only.' },
          {
            group: ['**/libs/**', ...libs.flatMap((l) => [`**/${l}/src`, `**/${l}/src/**`])],
            message: 'Import a lib through its @app alias and index only, never by a path into its sources.',
          },
          ...(typeormAllowed
            ? []
            : [
                {
                  group: ['typeorm', 'typeorm/**', '@nestjs/typeorm'],
                  message: 'Only @app/persistence imports TypeORM; use what its index exports.',
                },
              ]),
          ...(appsAllowed
            ? []
            : [
                {
                  // An app's sources, also by a relative path from another app (`../../../api/src/…`).
                  group: ['**/apps/**', ...apps.flatMap((a) => [`**/${a}/src`, `**/${a}/src/**`])],
                  message: 'Apps and libs never import an app.',
                },
              ]),
          ...libs
            .filter((l) => !allowed.includes(l))
            .map((l) => ({ group: [`@app/${l}`], message: `This layer must not depend on @app/${l}.` })),
        ],
      },
    ],
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { ...globals.node } },
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }] },
  },
  { files: ['**/*.js'], languageOptions: { sourceType: 'commonjs' } },
  { files: ['apps/**/*.ts'], rules: boundaries(libs) },
  // End-to-end tests boot the apps, so they may import them.
  { files: ['test/**/*.ts'], rules: boundaries(libs, { appsAllowed: true }) },
  {
    files: ['libs/domain/**/*.ts'],
    rules: boundaries(['persistence', 'queue', 'audit', 'validation', 'signing', 'config']),
  },
  { files: ['libs/audit/**/*.ts'], rules: boundaries(['persistence', 'queue', 'config']) },
  { files: ['libs/persistence/**/*.ts'], rules: boundaries(['config'], { typeormAllowed: true }) },
  { files: ['libs/queue/**/*.ts'], rules: boundaries(['config']) },
  // config checks TARGET_ALLOW_CIDRS with validation's CIDR parser, the one the API and the worker then use.
  { files: ['libs/config/**/*.ts'], rules: boundaries(['validation']) },
  { files: ['libs/validation/**/*.ts', 'libs/signing/**/*.ts'], rules: boundaries([]) },
  {
    // Tests poke at loosely typed JSON responses; the unsafe-* rules add noise there, not safety.
    files: ['**/*.spec.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  prettier,
);
