import type { INestApplication } from '@nestjs/common';
import {
  ApiProperty,
  ApiPropertyOptional,
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
} from '@nestjs/swagger';

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
  @ApiProperty({
    enum: [
      'validation_failed',
      'invalid_json',
      'unauthorized',
      'webhook_not_found',
      'not_found',
      'webhook_limit_reached',
      'webhook_disabled',
      'no_unclaimed_secret',
      'idempotency_key_reused',
      'payload_too_large',
      'rate_limited',
      'internal_error',
      'service_unavailable',
    ],
  })
  code!: string;
  /** One entry per violated rule; only on validation failures. */
  @ApiPropertyOptional({ type: [ErrorDetailResponse] })
  details?: ErrorDetailResponse[];
  /** The request id, also in the `x-request-id` header and the logs. */
  @ApiProperty()
  request_id!: string;
}

const ERROR_REF = { $ref: '#/components/schemas/ErrorResponse' };

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
  // Every operation may fail with the one error body, and every /v1 route needs the API key (the guard is
  // on each /v1 controller): say so once here rather than on every route.
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const op of Object.values(item)) {
      if (typeof op !== 'object' || op === null || !('responses' in op)) continue;
      const operation = op as { responses: Record<string, unknown>; security?: Record<string, string[]>[] };
      if (path.startsWith('/v1/') && !operation.security?.some((s) => 'anchor-api-key' in s)) {
        operation.security = [...(operation.security ?? []), { 'anchor-api-key': [] }];
      }
      const responses = operation.responses;
      responses.default ??= {
        description: 'Error (every non-2xx): see `code`',
        content: { 'application/json': { schema: ERROR_REF } },
      };
    }
  }
  return doc;
}

/** Serves the UI at `/docs` and the JSON at `/openapi.json`. */
export function setupOpenApi(app: INestApplication): void {
  const doc = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
}
