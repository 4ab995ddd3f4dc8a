import { registerDecorator, type ValidationOptions } from 'class-validator';

// RFC 3339 date-time: a full date, a time, and a zone (Z or an offset). Date-only or zone-less ISO 8601 forms
// are ambiguous about the instant they mean, so they are refused rather than guessed.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

interface Parts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Fraction digits, as written (may be empty). */
  fraction: string;
  /** Offset from UTC in minutes (east positive). */
  offsetMinutes: number;
}

function daysIn(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** The fields of an RFC 3339 timestamp with every range checked (section 5.6 and 5.7), or null. */
function parse(value: unknown): Parts | null {
  if (typeof value !== 'string') return null;
  const m = RFC3339.exec(value);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const offsetHours = m[10] === undefined ? 0 : Number(m[10]);
  const offsetMins = m[11] === undefined ? 0 : Number(m[11]);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60 || offsetHours > 23 || offsetMins > 59) return null;
  const sign = m[9] === '-' ? -1 : 1;
  const parts = {
    year,
    month,
    day,
    hour,
    minute,
    second,
    fraction: m[7] ?? '',
    offsetMinutes: sign * (offsetHours * 60 + offsetMins),
  };
  // A leap second (60) exists only as the last second of a UTC month (RFC 3339 section 5.7).
  if (second === 60) {
    const last = new Date(utcMillis({ ...parts, second: 59 }, 0));
    const nextDay = new Date(last.getTime() + 1000);
    if (last.getUTCHours() !== 23 || last.getUTCMinutes() !== 59 || nextDay.getUTCDate() !== 1) return null;
  }
  return parts;
}

/** Milliseconds since the epoch of the parts' date and time at second precision, plus `ms`. */
function utcMillis(p: Parts, ms: number): number {
  const at = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0 to 99 as 1900 to 1999.
  at.setUTCFullYear(p.year, p.month - 1, p.day);
  at.setUTCHours(p.hour, p.minute, p.second, ms);
  return at.getTime() - p.offsetMinutes * 60_000;
}

/** True for an RFC 3339 timestamp naming a real instant (no 2026-02-30, no 24:00, years 0000 to 9999). */
export function isRfc3339(value: unknown): boolean {
  return parse(value) !== null;
}

/**
 * The instant of a valid RFC 3339 timestamp at millisecond precision (what the service stores). Digits below
 * the millisecond are cut (`floor`) or, when any is non-zero, rounded up (`ceil`): an inclusive lower bound
 * such as `since=…:00.432999Z` must not take in a row stamped `.432Z`, which is earlier. A leap second has no
 * millisecond of its own: it is the edge between 23:59:59.999 (`floor`) and the next day's 00:00:00.000
 * (`ceil`). Throws on an invalid timestamp.
 */
export function rfc3339Instant(value: string, round: 'floor' | 'ceil' = 'floor'): Date {
  const p = parse(value);
  if (!p) throw new RangeError(`not an RFC 3339 timestamp: ${value}`);
  if (p.second === 60) return new Date(utcMillis({ ...p, second: 59 }, round === 'floor' ? 999 : 1000));
  const ms = Number(p.fraction.slice(0, 3).padEnd(3, '0'));
  const below = /[1-9]/.test(p.fraction.slice(3)) && round === 'ceil' ? 1 : 0;
  return new Date(utcMillis(p, ms + below));
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
