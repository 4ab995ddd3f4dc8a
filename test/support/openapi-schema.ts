/**
 * Checks a value against a schema of an OpenAPI 3.0 document: the subset the service's document uses ($ref,
 * type, nullable, enum, pattern, formats date-time and uuid, lengths, bounds, items, required, properties,
 * additionalProperties). Returns the violations, each with the path where it is; none means valid.
 */
export function schemaViolations(doc: any, schema: any, value: unknown, at = '$'): string[] {
  if (schema.$ref) {
    const name = String(schema.$ref).replace('#/components/schemas/', '');
    const target = doc.components.schemas[name];
    if (!target) return [`${at}: unresolved $ref ${schema.$ref}`];
    return schemaViolations(doc, target, value, at);
  }
  if (value === null) return schema.nullable ? [] : [`${at}: null where the schema is not nullable`];
  const out: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) out.push(`${at}: ${JSON.stringify(value)} not in enum`);
  switch (schema.type) {
    case undefined:
      break;
    case 'string':
      if (typeof value !== 'string') return [`${at}: ${typeof value} where a string is documented`];
      if (schema.pattern && !new RegExp(schema.pattern).test(value))
        out.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
      if (schema.minLength !== undefined && [...value].length < schema.minLength)
        out.push(`${at}: too short`);
      if (schema.maxLength !== undefined && [...value].length > schema.maxLength) out.push(`${at}: too long`);
      if (schema.format === 'date-time' && !RFC3339.test(value)) out.push(`${at}: not an RFC 3339 date-time`);
      if (schema.format === 'uuid' && !UUID.test(value)) out.push(`${at}: not a UUID`);
      break;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || (schema.type === 'integer' && !Number.isInteger(value)))
        return [`${at}: ${JSON.stringify(value)} where ${schema.type} is documented`];
      if (schema.minimum !== undefined && value < schema.minimum) out.push(`${at}: below minimum`);
      if (schema.maximum !== undefined && value > schema.maximum) out.push(`${at}: above maximum`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: ${typeof value} where a boolean is documented`];
      break;
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      if (schema.minItems !== undefined && value.length < schema.minItems) out.push(`${at}: too few items`);
      value.forEach((item, i) => out.push(...schemaViolations(doc, schema.items ?? {}, item, `${at}[${i}]`)));
      break;
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
      const record = value as Record<string, unknown>;
      for (const name of schema.required ?? []) {
        if (!(name in record)) out.push(`${at}.${name}: required but absent`);
      }
      const properties = (schema.properties ?? {}) as Record<string, unknown>;
      for (const [name, field] of Object.entries(record)) {
        if (name in properties) out.push(...schemaViolations(doc, properties[name], field, `${at}.${name}`));
        else if (schema.additionalProperties === false) out.push(`${at}.${name}: not documented`);
        else if (typeof schema.additionalProperties === 'object')
          out.push(...schemaViolations(doc, schema.additionalProperties, field, `${at}.${name}`));
      }
      break;
    }
    default:
      out.push(`${at}: unknown type ${schema.type}`);
  }
  return out;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
