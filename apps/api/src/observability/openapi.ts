import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  ApiProperty,
  ApiPropertyOptional,
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
} from '@nestjs/swagger';
import { ULID_PATTERN } from '@app/domain';
import { STATUS_BY_CODE } from '../http/error-response';
import { MAX_DETAILS } from '../http/http-error.filter';

/** The pattern of an id: `prefix` + a ULID (26 Crockford base32 characters, upper case). */
export const idPattern = (prefix: string): string => `^${prefix}${ULID_PATTERN}$`;
/** `sha256:` + the first 16 hex characters of SHA-256 over a secret. */
export const FINGERPRINT_PATTERN = '^sha256:[0-9a-f]{16}$';
/** Every timestamp the service answers: RFC 3339, UTC, milliseconds. */
const TIMESTAMP_PATTERN = String.raw`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`;

/** One violated rule of a validation failure (OpenAPI schema of `details[]`). */
export class ErrorDetailResponse {
  /** The field (wire name) that broke the rule. */
  @ApiProperty({ example: 'url' })
  field!: string;
  /** The rule's stable name. */
  @ApiProperty({ example: 'private_address' })
  rule!: string;
  /** A human sentence. */
  @ApiProperty()
  message!: string;
}

/** The body of every non-2xx response (OpenAPI schema). */
export class ErrorResponse {
  /** A human sentence. */
  @ApiProperty({ example: 'webhook not found' })
  error!: string;
  /** Stable machine-readable code. */
  @ApiProperty({ enum: Object.keys(STATUS_BY_CODE) })
  code!: string;
  /** One entry per violated rule, the first 20 of them; only on validation failures. */
  @ApiPropertyOptional({ type: [ErrorDetailResponse], maxItems: MAX_DETAILS })
  details?: ErrorDetailResponse[];
  /** The request id, also in the `x-request-id` header and the logs. */
  @ApiProperty()
  request_id!: string;
}

const ERROR_REF = { $ref: '#/components/schemas/ErrorResponse' };
// When the caller's `x-request-id` is kept (see http/request-id.ts).
const SANE_REQUEST_ID = '1 to 128 printable ASCII, nothing shaped like an API key or a secret';
const REQUEST_ID_HEADER = {
  description: `The request id: the caller's \`x-request-id\` when sane (${SANE_REQUEST_ID}), else a new one`,
  schema: { type: 'string' },
};
// The request header, on every operation (the id is taken, or made, before any route runs).
const REQUEST_ID_PARAMETER = {
  name: 'x-request-id',
  in: 'header',
  required: false,
  description: `Your id for this request, answered in the \`x-request-id\` header and the error body's \`request_id\`, and written to the logs and audit events: kept when sane (${SANE_REQUEST_ID}), else replaced by a new one; a new one when absent`,
  schema: { type: 'string' },
};
const RETRY_AFTER_HEADER = { description: 'Seconds to wait before retrying', schema: { type: 'integer' } };
// On every answer to a request whose API key was accepted (not on a 401), unless rate limiting is turned off.
const RATE_LIMIT_HEADERS = {
  'ratelimit-limit': {
    description:
      'Requests per minute the API key may make (`RATE_LIMIT_PER_MINUTE`); absent when it is `0` (off)',
    schema: { type: 'integer', minimum: 1 },
  },
  'ratelimit-remaining': {
    description: 'Requests the API key has left in the current minute',
    schema: { type: 'integer', minimum: 0 },
  },
  'ratelimit-reset': {
    description: 'Seconds until the current minute ends and the budget is whole again',
    schema: { type: 'integer', minimum: 0 },
  },
  'ratelimit-policy': {
    description:
      'The same policy in the structured form of the later IETF drafts: `"per-minute";q=<limit>;w=60`',
    schema: { type: 'string', example: '"per-minute";q=6000;w=60' },
  },
  ratelimit: {
    description:
      'The same state in the structured form of the later IETF drafts: `"per-minute";r=<remaining>;t=<seconds to the reset>`',
    schema: { type: 'string', example: '"per-minute";r=5999;t=42' },
  },
};
const REPLAYED_HEADER = {
  description:
    '`true` when this is the stored first response to the same `Idempotency-Key` and body, not a new execution; absent otherwise',
  schema: { type: 'string', enum: ['true'] },
};

// Operations with a 409 of their own besides a reused Idempotency-Key: the limit, a disabled webhook, a claim.
const CONFLICTS: Record<string, string> = {
  'post /v1/webhooks': '`webhook_limit_reached`',
  'post /v1/webhooks/{id}/test': '`webhook_disabled`',
  'post /v1/webhooks/{id}/secret/claim': '`no_unclaimed_secret`',
};

interface Operation {
  parameters?: { in: string; name: string }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: { $ref?: string } }> };
  responses: Record<string, { headers?: Record<string, unknown> } & Record<string, unknown>>;
  security?: Record<string, string[]>[];
}

/** Whether the operation takes an `Idempotency-Key` header. */
const hasIdempotencyKey = (op: Operation): boolean =>
  (op.parameters ?? []).some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');

/** The error statuses an operation can answer, with what each means there (api.md's "Errors" columns). */
function errorStatuses(method: string, path: string, op: Operation): Record<string, string> {
  const out: Record<string, string> = {};
  const params = op.parameters ?? [];
  const hasBody = method !== 'get' && method !== 'head';
  // A read's body is never parsed, so only its query can be refused there: never as `invalid_json`.
  if (hasBody) out['400'] = '`validation_failed` (with `details`) or `invalid_json`';
  else if (params.some((p) => p.in === 'query'))
    out['400'] =
      '`validation_failed` (with `details`): a query parameter that is invalid, repeated or unknown';
  // The body limit holds on every route, whether or not it reads a body.
  const tooLarge = hasBody
    ? '`payload_too_large`: a body over 64 KiB'
    : '`payload_too_large`: a body over 64 KiB (this route reads none, but a body is still received)';
  // While the process stops, a request that still arrives on an open connection gets 503 on every route.
  const stopping = 'the process is stopping (retry on a new connection)';
  if (!path.startsWith('/v1/')) {
    out['503'] =
      path === '/health/ready'
        ? `\`service_unavailable\`: a dependency is not ready, or ${stopping}`
        : `\`service_unavailable\`: ${stopping}`;
    return { ...out, '413': tooLarge };
  }
  out['401'] = '`unauthorized`: missing, unknown or revoked API key';
  if (params.some((p) => p.in === 'path' && p.name === 'id')) out['404'] = '`webhook_not_found`';
  // A replay speaks of a webhook that must still exist: the one a create returned, once deleted, is a 404 too.
  else if (hasIdempotencyKey(op))
    out['404'] =
      '`webhook_not_found`: the webhook of the stored first response to this `Idempotency-Key` has since been deleted';
  if (path.endsWith('rotation-policy') && method !== 'put') {
    // The project default concerns no webhook: only `not_found` (none set) is possible there.
    out['404'] =
      path === '/v1/rotation-policy'
        ? '`not_found`: no project default policy is set'
        : '`webhook_not_found`, or `not_found` when the webhook has no policy of its own';
  }
  const conflicts = [CONFLICTS[`${method} ${path}`]];
  if (hasIdempotencyKey(op)) conflicts.push('`idempotency_key_reused`');
  if (conflicts.some(Boolean)) out['409'] = conflicts.filter(Boolean).join(' or ');
  out['413'] = tooLarge;
  out['429'] = '`rate_limited`: the API key spent its budget for this minute';
  out['503'] = `\`service_unavailable\`: Postgres or Redis is unreachable, or ${stopping}`;
  return out;
}

/** The OpenAPI description, generated from the controllers and DTOs. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('webhook-secrets')
    .setDescription(
      'Webhook registration, signing-secret rotation, audit trail and signed delivery; wire-compatible with the Anchor Browser webhooks API.',
    )
    .setVersion('1')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'anchor-api-key' }, 'anchor-api-key')
    .build();
  const doc = SwaggerModule.createDocument(app, config, {
    extraModels: [ErrorResponse, ErrorDetailResponse],
  });
  const schemas = (doc.components?.schemas ?? {}) as Record<
    string,
    {
      required?: string[];
      additionalProperties?: boolean;
      properties?: Record<string, { format?: string; pattern?: string }>;
    }
  >;
  // Response bodies carry exactly their documented fields, and their timestamps always in one form.
  for (const [name, schema] of Object.entries(schemas)) {
    if (name.endsWith('Dto')) continue;
    schema.additionalProperties = false;
    for (const property of Object.values(schema.properties ?? {})) {
      if (property.format === 'date-time') property.pattern = TIMESTAMP_PATTERN;
    }
  }
  // What holds for every operation, said once here rather than on every route: the error statuses with the
  // one error body, the request id header, the API key on /v1, and request bodies that refuse unknown fields.
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, value] of Object.entries(item)) {
      if (typeof value !== 'object' || value === null || !('responses' in value)) continue;
      const op = value as Operation;
      op.parameters = [REQUEST_ID_PARAMETER, ...(op.parameters ?? [])];
      if (path.startsWith('/v1/') && !op.security?.some((s) => 'anchor-api-key' in s)) {
        op.security = [...(op.security ?? []), { 'anchor-api-key': [] }];
      }
      for (const [status, description] of Object.entries(errorStatuses(method, path, op))) {
        op.responses[status] ??= { description, content: { 'application/json': { schema: ERROR_REF } } };
        // A route's own 503 (readiness, with its report) is, while the process stops, the one error body alone.
        const json = (op.responses[status].content as Record<string, { schema?: unknown }> | undefined)?.[
          'application/json'
        ];
        if (status === '503' && json?.schema && json.schema !== ERROR_REF) {
          json.schema = { oneOf: [json.schema, ERROR_REF] };
        }
        if (status === '429' || status === '503') {
          op.responses[status].headers = {
            ...op.responses[status].headers,
            'retry-after': RETRY_AFTER_HEADER,
          };
        }
        if (status === '409' && hasIdempotencyKey(op)) {
          op.responses[status].headers = {
            ...op.responses[status].headers,
            'retry-after': {
              ...RETRY_AFTER_HEADER,
              description:
                'Only with `idempotency_key_reused` for a key that is busy (its first request still in progress, or this request taken over by a retry): seconds to wait before retrying',
            },
          };
        }
      }
      op.responses.default ??= {
        description: 'Error (every non-2xx): see `code`',
        content: { 'application/json': { schema: ERROR_REF } },
      };
      for (const [status, response] of Object.entries(op.responses)) {
        response.headers = { 'x-request-id': REQUEST_ID_HEADER, ...response.headers };
        if (path.startsWith('/v1/') && status !== '401') {
          response.headers = { ...response.headers, ...RATE_LIMIT_HEADERS };
        }
        if (status.startsWith('2') && hasIdempotencyKey(op)) {
          response.headers = { ...response.headers, 'idempotent-replayed': REPLAYED_HEADER };
        }
      }
      const ref = op.requestBody?.content?.['application/json']?.schema?.$ref;
      const schema = ref ? schemas[ref.split('/').pop() as string] : undefined;
      if (op.requestBody && schema) {
        schema.additionalProperties = false;
        // A body whose fields are all optional may be left out (rotate-secret needs none; PATCH takes `{}`).
        if (!schema.required?.length) op.requestBody.required = false;
      }
    }
  }
  return doc;
}

/** The media ranges of an `Accept` header that the client accepts at all (q > 0), lower case, parameters dropped. */
function acceptedTypes(accept: string | undefined): string[] {
  return (accept ?? '')
    .split(',')
    .map((range) => range.split(';').map((p) => p.trim().toLowerCase()))
    .filter(([, ...params]) => !params.some((p) => /^q=0(\.0*)?$/.test(p)))
    .map(([type]) => type);
}

/**
 * Serves the UI at `/docs` and the JSON at `/openapi.json` (and `/openapi.yaml`). `GET /docs` from a client that
 * asks for JSON and not for HTML (`Accept: application/json`) gets the JSON document itself, so that the one
 * address serves both readers: a browser the UI, a script the description.
 */
export function setupOpenApi(app: NestFastifyApplication): void {
  const doc = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
  const json = JSON.stringify(doc);
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (req, reply, done) => {
      const path = req.url.split('?')[0];
      // The UI's pages take an API key ("Authorize") and send requests with it: no other site may frame them.
      if (path === '/docs' || path.startsWith('/docs/'))
        void reply
          .header('x-frame-options', 'DENY')
          .header('content-security-policy', "frame-ancestors 'none'");
      if ((req.method === 'GET' || req.method === 'HEAD') && (path === '/docs' || path === '/docs/')) {
        // The answer depends on Accept: a cache must not give a browser the JSON, or a script the page.
        void reply.header('vary', 'accept');
        const types = acceptedTypes(req.headers.accept);
        const wantsJson = types.some(
          (t) => t === 'application/json' || t === 'application/vnd.oai.openapi+json',
        );
        if (wantsJson && !types.includes('text/html')) {
          void reply.header('content-type', 'application/json; charset=utf-8').send(json);
          return;
        }
      }
      done();
    });
}
