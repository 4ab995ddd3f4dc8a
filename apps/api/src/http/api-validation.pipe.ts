import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { getMetadataStorage } from 'class-validator';
import { ValidationFailedError, type ErrorDetail } from '@app/domain';
import { checkWebhookUrl } from '@app/validation';
import { notAnObjectError, unknownFieldDetail, unknownFieldsError } from './request-refusals';

/** class-validator constraint names mapped to the stable rule names of `details[].rule`. */
const RULE_NAMES: Record<string, string> = {
  whitelistValidation: 'unknown_field',
  isDefined: 'required',
  isString: 'type',
  isBoolean: 'type',
  isInt: 'type',
  isArray: 'type',
  arrayMinSize: 'min_items',
  maxLength: 'max_length',
  maxCharacters: 'max_length',
  min: 'min',
  max: 'max',
  isWebhookEvent: 'event_catalog',
  isIn: 'one_of',
};

const TYPE_CONSTRAINTS = ['isString', 'isBoolean', 'isInt', 'isArray'];

/**
 * The constraints worth reporting for one field: a missing field is only "required", a value of the wrong
 * type only "type"; the rules about its content follow only once it has the right type.
 */
function relevant(constraints: Record<string, string>): [string, string][] {
  const all = Object.entries(constraints);
  const missing = all.filter(([c]) => c === 'isDefined');
  if (missing.length) return missing;
  const wrongType = all.filter(([c]) => TYPE_CONSTRAINTS.includes(c));
  return wrongType.length ? wrongType : all;
}

/** Flattens class-validator errors into one detail per violated rule, expanding URL rules one by one. */
export function toDetails(errors: ValidationError[], parent = ''): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  for (const e of errors) {
    const field = parent ? `${parent}.${e.property}` : e.property;
    for (const [constraint, message] of relevant(e.constraints ?? {})) {
      if (constraint === 'isWebhookUrl') {
        for (const v of checkWebhookUrl(e.value).violations)
          details.push({ field, rule: v.rule, message: v.message });
      } else if (constraint === 'whitelistValidation') {
        details.push(unknownFieldDetail(field));
      } else {
        details.push({ field, rule: RULE_NAMES[constraint] ?? constraint, message });
      }
    }
    if (e.children?.length) details.push(...toDetails(e.children, field));
  }
  return details;
}

/**
 * The first string inside `value` that Postgres cannot store as text (a NUL character, or an unpaired UTF-16
 * surrogate, which has no UTF-8 form), with its path; undefined when there is none.
 */
export function findUnstorableText(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') || !value.isWellFormed() ? path : undefined;
  if (depth > 32 || value === null || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    const keyPath = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    const bad = findUnstorableText(k, keyPath, depth + 1) ?? findUnstorableText(v, keyPath, depth + 1);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

/**
 * Refuses fields named like the members every object inherits (`constructor`, `toString`, `valueOf`…), and
 * `prototype`: none is a field of any request, and the transformation would drop them without a word (it takes
 * the first for the class's own methods, and deletes `prototype`, `constructor` and `__proto__` against prototype
 * pollution), so a typo of that shape would pass silently.
 */
function refuseInheritedNames(value: object): void {
  const fields = Object.keys(value).filter((k) => k in Object.prototype || k === 'prototype');
  if (fields.length > 0) throw unknownFieldsError(fields);
}

/** The fields each validated class knows (those with a rule), or null for a class without any rule. */
const knownFieldsByClass = new WeakMap<object, ReadonlySet<string> | null>();

/** The fields `metatype` has rules for, as class-validator's whitelist sees them (inherited ones included). */
function knownFields(metatype: NonNullable<ArgumentMetadata['metatype']>): ReadonlySet<string> | null {
  let known = knownFieldsByClass.get(metatype);
  if (known === undefined) {
    const rules = getMetadataStorage().getTargetValidationMetadatas(metatype, '', false, false);
    known = rules.length > 0 ? new Set(rules.map((r) => r.propertyName)) : null;
    knownFieldsByClass.set(metatype, known);
  }
  return known;
}

/**
 * The validation preset of every route: unknown fields are refused by name, types are never coerced, and
 * every violated rule is reported. A body that is not a JSON object is refused before field rules run.
 */
export class ApiValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      forbidUnknownValues: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
      validationError: { target: false, value: true },
      stopAtFirstError: false,
      exceptionFactory: (errors: ValidationError[]) => {
        const details = toDetails(errors);
        return new ValidationFailedError(details[0]?.message ?? 'request is invalid', details);
      },
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype && metadata.metatype !== Object) {
      // No body at all reads as an empty object, so required fields are reported by name.
      if (value === undefined || value === null) value = {};
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw notAnObjectError();
      }
    }
    if (
      (metadata.type === 'body' || metadata.type === 'query') &&
      value !== null &&
      typeof value === 'object'
    ) {
      refuseInheritedNames(value);
      const known = metadata.metatype ? knownFields(metadata.metatype) : null;
      const unknown = known === null ? [] : Object.keys(value).filter((k) => !known.has(k));
      if (known !== null && unknown.length > 0)
        await this.refuseUnknownFields(value, known, unknown, metadata);
    }
    // Field rules first (a URL with a NUL in it breaks a URL rule); then nothing Postgres cannot store may pass.
    const result: unknown = await super.transform(value, metadata);
    // A whole body or query is named by its fields (`webhook_id`, not `query.webhook_id`); a single parameter by its own.
    const bad = findUnstorableText(value, metadata.type === 'body' ? '' : (metadata.data ?? ''));
    if (bad !== undefined) {
      // A path id Postgres cannot hold names no webhook: it goes on as one that matches none (ids are ASCII), so
      // it is answered exactly like any other unknown id (404, after the body's own checks).
      if (metadata.type === 'param' && typeof result === 'string')
        return result.replaceAll('\u0000', '\ufffd').toWellFormed();
      const field = bad || metadata.type;
      const message = `${field} must not contain NUL characters or unpaired surrogates`;
      throw new ValidationFailedError(message, [{ field, rule: 'text', message }]);
    }
    return result;
  }

  /**
   * Refuses a value with `unknown` fields with the very error the whole validation would give (the unknown fields
   * first, each named, then every rule the known fields break), without transforming or validating what the
   * unknown fields hold: a body of a few tens of kilobytes under one unknown name (`{"x":[{},{},…]}`) or thousands
   * of unknown names would otherwise cost tens of milliseconds of the event loop before being refused by name.
   */
  private async refuseUnknownFields(
    value: object,
    known: ReadonlySet<string>,
    unknown: string[],
    metadata: ArgumentMetadata,
  ): Promise<never> {
    const refusal = unknownFieldsError(unknown);
    const knownOnly = Object.fromEntries(Object.entries(value).filter(([k]) => known.has(k)));
    try {
      await super.transform(knownOnly, metadata);
    } catch (e) {
      if (!(e instanceof ValidationFailedError)) throw e;
      throw new ValidationFailedError(refusal.message, [...refusal.details, ...e.details]);
    }
    throw refusal;
  }
}
