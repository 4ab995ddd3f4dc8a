import { registerDecorator, type ValidationOptions } from 'class-validator';

// RFC 3339 date-time: a full date, a time, and a zone (Z or an offset). Date-only or zone-less ISO 8601 forms
// are ambiguous about the instant they mean, so they are refused rather than guessed.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** True for an RFC 3339 timestamp naming a real instant (no 2026-02-30, no 25:00). */
export function isRfc3339(value: unknown): boolean {
  if (typeof value !== 'string' || !RFC3339.test(value)) return false;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return false;
  // Date rolls impossible days over (Feb 30 → Mar 2); the calendar date in the given zone must survive.
  const [y, mo, d] = value.slice(0, 10).split('-').map(Number);
  const probe = new Date(Date.UTC(y, mo - 1, d));
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === mo - 1 && probe.getUTCDate() === d;
}

/** Constraint name of {@link IsRfc3339} (`details[].rule` of a refused timestamp). */
export const IS_RFC3339 = 'rfc3339';

/** class-validator decorator: the property is an RFC 3339 timestamp naming a real instant. */
export function IsRfc3339(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: IS_RFC3339,
      target: target.constructor,
      propertyName: String(propertyName),
      options,
      validator: { validate: isRfc3339 },
    });
}
