import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { Writable } from 'node:stream';
import { LOG_DESTINATION, loadConfig } from '@app/config';
import { ApiKeysService, Clock, ManualClock, SystemClock } from '@app/domain';
import { Database } from '@app/persistence';
import { API_APP_OPTIONS, apiAdapter, configureApiApp } from '../../apps/api/src/api.app';
import { ApiModule } from '../../apps/api/src/api.module';
import { HttpClient } from './http-client';

/** A running API on a random local port, on the real test Postgres and Redis. */
export interface RunningApi {
  app: NestFastifyApplication;
  http: HttpClient;
  db: Database;
  clock: Clock;
  /** Mints an API key (for a new project unless one is given). */
  newKey(projectId?: string): Promise<{ key: string; projectId: string; apiKeyId: string }>;
  close(): Promise<void>;
}

/**
 * Boots the API in-process and listens on 127.0.0.1. `env` overrides configuration for this instance only;
 * `clock` replaces the wall clock (time-dependent rules are then driven by the test, never by sleeping).
 * `logDestination` receives the JSON log lines (set LOG_LEVEL in `env` too: tests default to silent).
 */
export async function startApi(
  opts: { env?: Record<string, string>; clock?: ManualClock; logDestination?: Writable } = {},
): Promise<RunningApi> {
  const overrides = opts.env ?? {};
  const saved = Object.fromEntries(Object.keys(overrides).map((k) => [k, process.env[k]]));
  Object.assign(process.env, overrides);
  try {
    const config = loadConfig();
    const clock = opts.clock ?? new SystemClock();
    const moduleRef = await Test.createTestingModule({ imports: [ApiModule] })
      .overrideProvider(Clock)
      .useValue(clock)
      .overrideProvider(LOG_DESTINATION)
      .useValue(opts.logDestination ?? process.stdout)
      .compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(apiAdapter(config.http), {
      ...API_APP_OPTIONS,
      logger: false,
    });
    configureApiApp(app, config);
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    const keys = app.get(ApiKeysService);
    return {
      app,
      http: new HttpClient(`http://127.0.0.1:${address.port}`),
      db: app.get(Database),
      clock,
      async newKey(projectId?: string) {
        const k = await keys.create({ projectId, name: 'test', actor: { type: 'admin', id: 'test' } });
        return { key: k.api_key, projectId: k.project_id, apiKeyId: k.api_key_id };
      },
      close: () => app.close(),
    };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
