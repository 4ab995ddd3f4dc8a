import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { AppConfig } from '@app/config';
import { parseCidrList, setDefaultUrlPolicy } from '@app/validation';
import { ApiValidationPipe } from './http/api-validation.pipe';
import { HttpErrorFilter } from './http/http-error.filter';
import { BODY_LIMIT_BYTES, registerJsonBodyParser } from './http/json-body.parser';
import { requestIdFor } from './http/request-id';

/** Fastify options of the API: body limit, request ids from `x-request-id`, proxies trusted for client IPs. */
export function apiAdapter(): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: requestIdFor,
    trustProxy: true,
    // A long id is just an unknown webhook (404), not a 414.
    routerOptions: { maxParamLength: 2048 },
  });
}

/** Options for creating the API application: our own body parser instead of Nest's. */
export const API_APP_OPTIONS = {
  bufferLogs: true,
  abortOnError: false,
  // Our own parser handles every body (see registerJsonBodyParser); Nest's would accept form bodies.
  bodyParser: false,
} as const;

/** Wires the HTTP conventions onto a created API application; shared by `main` and the end-to-end tests. */
export function configureApiApp(app: NestFastifyApplication, config: AppConfig): NestFastifyApplication {
  setDefaultUrlPolicy({ allowCidrs: parseCidrList(config.targets.allowCidrs.join(',')) });
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
