import ipaddr from 'ipaddr.js';
import fc from 'fast-check';
import { checkWebhookUrl } from './webhook-url.rule';
import { isPublicAddress } from './ip-address.rule';
import { parseCidrList } from './cidr-list.parser';

// The ranges of the API contract, written out again on purpose: the properties must not trust the data file.
const BLOCKED_V4: readonly [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
// Refused beyond the contract's list: deprecated 6to4 relay anycast, and the Azure wire server (metadata).
const ALSO_REFUSED_V4: readonly [string, number][] = [
  ['192.88.99.0', 24],
  ['168.63.129.16', 32],
];

const toInt = (dotted: string) => dotted.split('.').reduce((n, p) => n * 256 + Number(p), 0);
const toDotted = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const rangeOf = ([base, bits]: [string, number]) => {
  const start = toInt(base);
  return { start, end: start + 2 ** (32 - bits) - 1 };
};
const inAny = (n: number, ranges: readonly [string, number][]) =>
  ranges.some((r) => n >= rangeOf(r).start && n <= rangeOf(r).end);

/** An address inside one of the blocked IPv4 ranges, every range equally likely. */
const blockedV4 = fc
  .constantFrom(...BLOCKED_V4)
  .chain((r) => fc.integer({ min: rangeOf(r).start, max: rangeOf(r).end }));

/** A canonical IPv4 address outside every refused range. */
const publicV4 = fc
  .integer({ min: 0, max: 2 ** 32 - 1 })
  .filter((n) => !inAny(n, BLOCKED_V4) && !inAny(n, ALSO_REFUSED_V4) && n !== 0xffffffff);

type Radix = 'dec' | 'hex' | 'oct';
const radix = fc.constantFrom<Radix>('dec', 'hex', 'oct');
const spell = (n: number, r: Radix) =>
  r === 'dec' ? String(n) : r === 'hex' ? `0x${n.toString(16)}` : `0${n.toString(8)}`;

/** Every numeric spelling the WHATWG parser turns into `n`: 1 to 4 parts, each decimal, hex or octal. */
const spelling = (n: number) =>
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.array(radix, { minLength: 4, maxLength: 4 }))
    .map(([parts, radices]) => {
      const bytes = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
      const lead = bytes.slice(0, parts - 1);
      const rest = bytes.slice(parts - 1).reduce((acc, b) => acc * 256 + b, 0);
      return [...lead, rest].map((v, i) => spell(v, radices[i])).join('.');
    });

const hex16 = (n: number) => n.toString(16);
const v6Embedding = fc.constantFrom(
  (n: number) => `::ffff:${toDotted(n)}`,
  (n: number) => `::ffff:${hex16(n >>> 16)}:${hex16(n & 0xffff)}`,
  (n: number) => `::${toDotted(n)}`,
  (n: number) => `::ffff:0:${toDotted(n)}`,
  (n: number) => `64:ff9b::${toDotted(n)}`,
  (n: number) => `64:ff9b:1::${hex16(n >>> 16)}:${hex16(n & 0xffff)}`,
  (n: number) => `2002:${hex16(n >>> 16)}:${hex16(n & 0xffff)}::1`,
  // Teredo: server 65.54.227.120, client address with every bit inverted.
  (n: number) => `2001:0:4136:e378:8000:63bf:${hex16(~n >>> 16)}:${hex16(~n & 0xffff)}`,
);

const rules = (url: string) => checkWebhookUrl(url, {}).violations.map((v) => v.rule);

describe('checkWebhookUrl: properties', () => {
  it('refuses every address of every blocked IPv4 range in canonical form', () => {
    fc.assert(
      fc.property(blockedV4, (n) => {
        expect(rules(`https://${toDotted(n)}/`)).toContain('private_address');
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses blocked IPv4 addresses in every numeric spelling the WHATWG parser accepts', () => {
    fc.assert(
      fc.property(
        blockedV4.chain((n) => fc.tuple(fc.constant(n), spelling(n))),
        ([n, text]) => {
          const url = `https://${text}/`;
          // Only spellings the WHATWG parser really reads as this address are meaningful here.
          expect(new URL(url).hostname).toBe(toDotted(n));
          const found = rules(url);
          expect(found).toContain('private_address');
          if (text !== toDotted(n)) expect(found).toContain('ip_literal_form');
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('refuses non-canonical spellings of public IPv4 addresses', () => {
    fc.assert(
      fc.property(
        publicV4.chain((n) => fc.tuple(fc.constant(n), spelling(n))),
        ([n, text]) => {
          fc.pre(text !== toDotted(n));
          expect(new URL(`https://${text}/`).hostname).toBe(toDotted(n));
          expect(rules(`https://${text}/`)).toEqual(['ip_literal_form']);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accepts canonical public IPv4 literals, with or without a port', () => {
    fc.assert(
      fc.property(publicV4, fc.option(fc.integer({ min: 1, max: 65535 })), (n, port) => {
        const url = `https://${toDotted(n)}${port === null ? '' : `:${port}`}/hook`;
        expect(checkWebhookUrl(url, {})).toEqual({ ok: true, host: toDotted(n), violations: [] });
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts global-unicast IPv6 literals outside the excluded blocks', () => {
    const globalV6 = fc
      .tuple(
        fc.integer({ min: 0x2000, max: 0x3fff }),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 7, maxLength: 7 }),
      )
      .map(([first, rest]) => [first, ...rest])
      .filter(
        ([a, b]) =>
          !(a === 0x2001 && b <= 0x01ff) &&
          !(a === 0x2001 && b === 0x0db8) &&
          a !== 0x2002 &&
          !(a === 0x3fff && b <= 0x0fff),
      );
    fc.assert(
      fc.property(globalV6, fc.boolean(), (parts, compress) => {
        const full = parts.map(hex16).join(':');
        const text = compress ? full.replace(/(^|:)0(:0)+(:|$)/, '::') : full;
        expect(checkWebhookUrl(`https://[${text}]/`, {}).violations).toEqual([]);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses every IPv4-embedding IPv6 form, of blocked and public addresses alike', () => {
    fc.assert(
      fc.property(fc.oneof(blockedV4, publicV4), v6Embedding, (n, embed) => {
        const found = rules(`https://[${embed(n)}]/`);
        expect(found).toContain('private_address');
        // 0.0.0.0 and 0.0.0.1 in the IPv4-compatible form are :: and ::1 (as the URL parser reads them,
        // whatever the spelling), which are their own kinds.
        const host = new URL(`https://[${embed(n)}]/`).hostname.slice(1, -1);
        const own = ['unspecified', 'loopback'].includes(ipaddr.IPv6.parse(host).range());
        if (own) expect(found).not.toContain('ipv4_embedded');
        else expect(found).toContain('ipv4_embedded');
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses every zone id', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('fe80::1', '2606:4700::1111', '::1', 'fd00::1'),
        fc.stringMatching(/^[a-z0-9]{1,8}$/),
        (address, zone) => {
          expect(rules(`https://[${address}%25${zone}]/`)).toContain('zone_id');
        },
      ),
    );
  });

  it('lets an allow-listed private block through the address rules, and nothing else', () => {
    const allow = parseCidrList('10.0.0.0/8');
    fc.assert(
      fc.property(
        fc.integer({ min: toInt('10.0.0.0'), max: toInt('10.255.255.255') }),
        blockedV4,
        (inside, other) => {
          expect(checkWebhookUrl(`https://${toDotted(inside)}/`, { allowCidrs: allow }).ok).toBe(true);
          expect(isPublicAddress(toDotted(inside), allow)).toBe(true);
          if (!inAny(other, [['10.0.0.0', 8]])) {
            expect(checkWebhookUrl(`https://${toDotted(other)}/`, { allowCidrs: allow }).ok).toBe(false);
            expect(isPublicAddress(toDotted(other), allow)).toBe(false);
          }
        },
      ),
    );
  });

  it('accepts any public domain that merely has a blocked word as one of its labels', () => {
    const word = fc.constantFrom(
      'localhost',
      'internal',
      'metadata',
      'local',
      'svc',
      'sts',
      'iam',
      'eks',
      'kubernetes',
      'instance-data',
      'consul',
      'corp',
    );
    // An ASCII label, but not an IDNA A-label ("xn--…"): those must be valid Punycode, which "xn--0" is not.
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/).filter((l) => !l.startsWith('xn--'));
    fc.assert(
      fc.property(word, label, fc.constantFrom('com', 'org', 'net', 'io', 'de'), (w, l, tld) => {
        expect(checkWebhookUrl(`https://${w}.${l}.${tld}/`, {}).violations).toEqual([]);
      }),
    );
  });
});
