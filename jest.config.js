// Two projects: unit specs beside the code, end-to-end specs in test/ against real Postgres and Redis.
const moduleNameMapper = {
  '^@app/(config|validation|domain|persistence|queue|audit|signing)$': '<rootDir>/libs/$1/src',
};
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] };

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 60000,
  // End-to-end suites share one database and one Redis and some stop dependencies on purpose; one test file
  // at a time keeps them independent. On a 2-core machine parallel files would gain little anyway.
  maxWorkers: 1,
  // In one process, a handle a file leaves open would keep Jest from ever exiting once the results are printed;
  // the teardown names any such handle, so the file that leaked it can be mended.
  forceExit: true,
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  projects: [
    {
      displayName: 'unit',
      rootDir: __dirname,
      testEnvironment: 'node',
      moduleFileExtensions: ['ts', 'js', 'json'],
      testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
      transform,
      moduleNameMapper,
    },
    {
      displayName: 'e2e',
      rootDir: __dirname,
      testEnvironment: 'node',
      moduleFileExtensions: ['ts', 'js', 'json'],
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      transform,
      moduleNameMapper,
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      setupFiles: ['<rootDir>/test/support/setup-env.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/isolate-redis.ts'],
    },
  ],
};
