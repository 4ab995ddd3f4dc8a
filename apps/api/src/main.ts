import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { ConfigError, loadConfig, type AppConfig } from '@app/config';
import { setDefaultUrlPolicy, parseCidrList } from '@app/validation';
import { ApiModule } from './api.module';
import { ApiValidationPipe } from './http/api-validation.pipe';
import { HttpErrorFilter } from './http/http-error.filter';
import { BODY_LIMIT_BYTES, registerJsonBodyParser } from './http/json-body.parser';
import { requestIdFor } from './http/request-id';

/** Builds the API application (not listening yet); shared by `main` and the end-to-end tests. */
export async function createApiApp(config: AppConfig, configure?: (app: NestFastifyApplication) => void): Promise<NestFastifyApplication> {
  setDefaultUrlPolicy({ allowCidrs: parseCidrList(config.targets.allowCidrs.join(',')) });
  const adapter = new FastifyAdapter({ bodyLimit: BODY_LIMIT_BYTES, genReqId: requestIdFor, trustProxy: true });
  const app = await NestFactory.create<NestFastifyApplication>(ApiModule, adapter, {
    bufferLogs: true,
    abortOnError: false,
    // Our own parser handles every body (see registerJsonBodyParser); Nest's would accept form bodies.
    bodyParser: false,
  });
  configure?.(app);
  const fastify = app.getHttpAdapter().getInstance();
  registerJsonBodyParser(fastify);
  fastify.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  app.useGlobalFilters(new HttpErrorFilter());
  app.useGlobalPipes(new ApiValidationPipe());
  app.enableShutdownHooks();
  return app;
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  const logger = new Logger('api');
  if (config.secrets.usingDevelopmentKey) {
    logger.warn('SECRETS_ENCRYPTION_KEYS is not set: secrets are encrypted with the fixed DEVELOPMENT key. Never run production like this.');
  }
  if (config.targets.allowCidrs.length > 0) {
    logger.warn(`TARGET_ALLOW_CIDRS lets webhooks reach non-public ranges: ${config.targets.allowCidrs.join(', ')}`);
  }
  const app = await createApiApp(config);
  await app.listen(config.http.port, config.http.host);
  logger.log(`listening on ${config.http.host}:${config.http.port}`);
}

if (require.main === module) void main();
