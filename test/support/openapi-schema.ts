import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/** Validators of the schemas of one OpenAPI document, compiled once per schema. */
const validators = new WeakMap<object, { ajv: Ajv; compiled: Map<string, ValidateFunction> }>();

/**
 * Checks a value against a schema of an OpenAPI 3.0 document (Ajv, with OpenAPI's `nullable` and the document's
 * components reachable by `#/components/schemas/...`). Returns the violations, each with the path where it is;
 * none means valid.
 */
export function schemaViolations(doc: any, schema: any, value: unknown): string[] {
  let entry = validators.get(doc);
  if (!entry) {
    // strict off: OpenAPI adds keywords of its own (example, description on $ref siblings…) that are not JSON
    // Schema's; the document is registered whole so that its components resolve from any schema of it.
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ components: doc.components }, 'openapi');
    entry = { ajv, compiled: new Map() };
    validators.set(doc, entry);
  }
  const key = JSON.stringify(schema);
  let validate = entry.compiled.get(key);
  if (!validate) {
    // An inline schema refers to components of the document, which Ajv knows as `openapi`.
    const rebased = JSON.parse(key.replaceAll('"#/components/', '"openapi#/components/'));
    validate = entry.ajv.compile(rebased);
    entry.compiled.set(key, validate);
  }
  return validate(value) ? [] : (validate.errors ?? []).map(describe);
}

function describe(e: ErrorObject): string {
  return `$${e.instancePath.replaceAll('/', '.')}: ${e.message ?? e.keyword}${
    e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : ''
  }`;
}

/** A response as the checks below need it. */
export interface SeenResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * What the document gets wrong about one real response of `method path` (a path template of the document): its
 * status not documented, its body not valid against that status's schema, or a header the service sent that the
 * response does not declare (of the headers it documents at all: request id, rate limits, retries, replays).
 */
export function responseViolations(doc: any, method: string, path: string, res: SeenResponse): string[] {
  const op = doc.paths[path]?.[method.toLowerCase()];
  const where = `${method} ${path} ${res.status}`;
  if (!op) return [`${where}: operation not documented`];
  const documented = op.responses[String(res.status)];
  if (!documented) return [`${where}: status not documented`];
  const out: string[] = [];
  const schema = documented.content?.['application/json']?.schema;
  if (schema) out.push(...schemaViolations(doc, schema, res.body).map((v) => `${where}: ${v}`));
  const headers = Object.keys(documented.headers ?? {}).map((h) => h.toLowerCase());
  res.headers.forEach((_, name) => {
    if (/^(x-request-id|ratelimit-.*|retry-after|idempotent-replayed)$/.test(name) && !headers.includes(name))
      out.push(`${where}: header ${name} not documented`);
  });
  return out;
}
