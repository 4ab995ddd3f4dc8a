import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';
import { checkIpAddress } from './ip-address.rule';
import { checkHostName } from './host-name.rule';
import { getDefaultUrlPolicy } from './url-policy.store';
import {
  URL_RULES,
  URL_RULE_MESSAGES,
  type UrlCheckResult,
  type UrlPolicy,
  type UrlRule,
  type UrlViolation,
} from './webhook-url.types';
import type { CidrList } from './cidr-list.parser';

const MAX_LENGTH = 2048;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
// The WHATWG parser silently drops tabs and newlines and trims spaces, so they must be refused on the raw text.
const WHITESPACE_OR_CONTROL = /[\s\p{Cc}]/u;
const CANONICAL_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
// A host whose last label is "a number" is an IPv4 address to the WHATWG parser (decimal, octal, hex or "0x").
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/i;
const PORT = /^\d{1,5}$/;
const TAB_OR_NEWLINE = /[\t\n\r]/g;
// Rules whose raw-text finding already explains why the WHATWG parser refused the URL.
const PARSE_FAILURE_RULES: readonly UrlRule[] = ['form', 'zone_id', 'ip_literal_form'];
const RULE_ORDER: ReadonlyMap<UrlRule, number> = new Map(URL_RULES.map((rule, i) => [rule, i]));

/** Collects at most one violation per rule; the first message given for a rule wins. */
class Violations {
  private readonly byRule = new Map<UrlRule, string>();

  add(rule: UrlRule, message: string = URL_RULE_MESSAGES[rule]): void {
    if (!this.byRule.has(rule)) this.byRule.set(rule, message);
  }

  has(rule: UrlRule): boolean {
    return this.byRule.has(rule);
  }

  list(): UrlViolation[] {
    return [...this.byRule]
      .sort(([a], [b]) => (RULE_ORDER.get(a) ?? 0) - (RULE_ORDER.get(b) ?? 0))
      .map(([rule, message]) => ({ rule, message }));
  }
}

/** The authority split out of the raw text, before any WHATWG repair. */
interface RawAuthority {
  /** Host as written (IPv6 literals keep their brackets). */
  host: string;
  bracketed: boolean;
}

/**
 * Checks a webhook target URL against every rule of the API contract ("Webhook URL rules") and reports every
 * violated rule, not just the first, in a stable order. Pure: no DNS, no I/O. Without `policy`, the process-wide
 * default policy ({@link setDefaultUrlPolicy}) applies.
 */
export function checkWebhookUrl(url: unknown, policy?: UrlPolicy): UrlCheckResult {
  const violations = new Violations();
  if (typeof url !== 'string') {
    violations.add('form', 'url must be a string');
    return { ok: false, host: null, violations: violations.list() };
  }
  if (url.length === 0) {
    violations.add('length');
    return { ok: false, host: null, violations: violations.list() };
  }
  // Characters, not UTF-16 units: count code points only on the rare long input (a character takes at most two
  // units). An over-long URL is refused for its length alone, unread: the other rules would spend time in
  // proportion to whatever size was sent.
  if (url.length > MAX_LENGTH && (url.length > 2 * MAX_LENGTH || [...url].length > MAX_LENGTH)) {
    violations.add('length');
    return { ok: false, host: null, violations: violations.list() };
  }
  if (WHITESPACE_OR_CONTROL.test(url))
    violations.add('form', 'url must not contain whitespace or control characters');
  if (url.includes('\\')) violations.add('form', 'url must not contain a backslash');

  // Read the structure the way the WHATWG parser will (edges trimmed, tabs and newlines dropped) so that one
  // stray character is reported once, as form, and not again as a wrong scheme or host.
  const raw = checkRawForm(trimC0(url).replace(TAB_OR_NEWLINE, ''), violations);
  const allow = (policy ?? getDefaultUrlPolicy()).allowCidrs ?? [];

  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // Reported below, unless a raw-text rule already explains the failure.
  }

  if (parsed === null) {
    if (!PARSE_FAILURE_RULES.some((rule) => violations.has(rule))) {
      violations.add('form', 'url is not a valid absolute URL');
    }
    // Still judge the host as written, so the caller learns every rule it breaks in one round trip.
    if (raw !== null) checkHost(fallbackHost(raw), raw, allow, violations);
    return { ok: false, host: null, violations: violations.list() };
  }

  if (parsed.protocol !== 'https:') violations.add('scheme');
  if (parsed.username !== '' || parsed.password !== '') violations.add('credentials');
  const host = checkHost(parsed.hostname, raw, allow, violations);
  const list = violations.list();
  return { ok: list.length === 0, host, violations: list };
}

/**
 * `text` without leading and trailing C0 controls and spaces, which the WHATWG parser trims. A loop, not a
 * regular expression: `/[\u0000-\u0020]+$/` retries from every position of a long inner run (quadratic time).
 */
function trimC0(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) <= 0x20) start++;
  while (end > start && text.charCodeAt(end - 1) <= 0x20) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** Checks the parts the WHATWG parser would repair or drop; returns the raw host when there is one. */
function checkRawForm(url: string, violations: Violations): RawAuthority | null {
  const scheme = SCHEME.exec(url);
  if (scheme === null) violations.add('scheme', 'url must be absolute and use https');
  else if (scheme[1].toLowerCase() !== 'https') violations.add('scheme');

  const rest = scheme === null ? url : url.slice(scheme[0].length);
  if (!rest.startsWith('//')) {
    violations.add('form', 'url must have // and a host after the scheme');
    return null;
  }
  // For special schemes the WHATWG parser also ends the authority at a backslash.
  const end = rest.slice(2).search(/[/?#\\]/);
  const authority = end === -1 ? rest.slice(2) : rest.slice(2, 2 + end);
  // Any @, even with empty credentials, lets the visible text disagree with the host actually contacted.
  const at = authority.lastIndexOf('@');
  if (at !== -1) violations.add('credentials');
  const hostPort = authority.slice(at + 1);

  let host: string;
  let port: string | null = null;
  const bracketed = hostPort.startsWith('[');
  if (bracketed) {
    const close = hostPort.indexOf(']');
    if (close === -1) {
      violations.add('form', 'url has an unterminated IPv6 literal');
      return null;
    }
    host = hostPort.slice(0, close + 1);
    const after = hostPort.slice(close + 1);
    if (after.startsWith(':')) port = after.slice(1);
    else if (after !== '') violations.add('form', 'url has text after an IPv6 literal');
    if (host.includes('%')) violations.add('zone_id');
  } else if (
    hostPort.indexOf(':') !== hostPort.lastIndexOf(':') &&
    ipaddr.IPv6.isValid(hostPort.replace(/%.*$/, ''))
  ) {
    // An IPv6 address without its brackets (two colons at least; a host and a port have one): judge it as the
    // literal it was meant to be, rather than as a host "2606" with the port "4700::1111".
    violations.add('form', 'url must enclose an IPv6 address in brackets');
    if (hostPort.includes('%')) violations.add('zone_id');
    return { host: `[${hostPort}]`, bracketed: true };
  } else {
    const colon = hostPort.indexOf(':');
    host = colon === -1 ? hostPort : hostPort.slice(0, colon);
    if (colon !== -1) port = hostPort.slice(colon + 1);
  }

  if (port !== null && !(PORT.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
    violations.add('form', 'url port must be a number from 1 to 65535');
  }
  if (host === '') {
    violations.add('form', 'url must have a non-empty host');
    return null;
  }
  if (!bracketed) {
    // Percent-escapes in a host are decoded before IDNA and hide the real name from anyone reading the URL.
    if (host.includes('%')) violations.add('form', 'url host must not contain percent-escapes');
    const name = host.endsWith('.') ? host.slice(0, -1) : host;
    if (name.split('.').includes('')) violations.add('form', 'url host must not have an empty label');
    const labels = name.split('.');
    if (NUMERIC_LABEL.test(labels[labels.length - 1]) && !CANONICAL_IPV4.test(host)) {
      violations.add('ip_literal_form');
    }
  }
  return { host, bracketed };
}

/** Best-effort normalization of a raw host when the WHATWG parser refused the whole URL. */
function fallbackHost(raw: RawAuthority): string {
  if (raw.bracketed) return raw.host.replace(/%.*(?=]$)/, '');
  return domainToASCII(raw.host) || raw.host.toLowerCase();
}

/** Applies the IP-literal and name rules to a WHATWG-serialized host; returns the normalized host. */
function checkHost(
  hostname: string,
  raw: RawAuthority | null,
  allow: CidrList,
  violations: Violations,
): string {
  if (hostname.startsWith('[')) {
    const inner = hostname.slice(1, -1);
    if (ipaddr.IPv6.isValid(inner)) {
      for (const rule of checkIpAddress(ipaddr.IPv6.parse(inner), allow)) violations.add(rule);
    } else {
      violations.add('form', 'url has an invalid IPv6 literal');
    }
    return hostname;
  }

  const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  const labels = host.split('.');
  if (labels.includes('')) violations.add('form', 'url host must not have an empty label');
  if (CANONICAL_IPV4.test(host)) {
    // The WHATWG parser rewrites every numeric spelling (and full-width digits) to canonical form: any
    // difference from what was sent means a non-canonical spelling.
    if (raw !== null && raw.host.toLowerCase() !== host) violations.add('ip_literal_form');
    for (const rule of checkIpAddress(ipaddr.IPv4.parse(host), allow)) violations.add(rule);
    return host;
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) {
    violations.add('ip_literal_form');
    return host;
  }
  for (const rule of checkHostName(host)) violations.add(rule);
  return host;
}
