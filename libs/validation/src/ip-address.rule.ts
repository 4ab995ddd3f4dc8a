import ipaddr from 'ipaddr.js';
import { cidrListContains, type CidrList } from './cidr-list.parser';
import { getDefaultUrlPolicy } from './url-policy.store';
import {
  ALLOWED_IPV6_SPACE,
  BLOCKED_IPV4_RANGES,
  BLOCKED_IPV6_RANGES,
  IPV4_EMBEDDING_IPV6_RANGES,
  ISATAP_INTERFACE_IDS,
  ISATAP_MARKER,
  METADATA_ADDRESSES,
  type Ipv4Embedding,
} from './url-blocklists.data';

/** The address rules a single IP address can break. */
export type AddressRule = 'private_address' | 'ipv4_embedded' | 'metadata_service';

type Range<T> = readonly [T, number];

// Parsed once at load: the data file keeps the readable strings, the checks need the parsed form.
const IPV4_BLOCKED: readonly Range<ipaddr.IPv4>[] = BLOCKED_IPV4_RANGES.map((r) =>
  ipaddr.IPv4.parseCIDR(r.cidr),
);
/** Whether an IPv4 address lies in a block that is not globally reachable. */
const blockedV4 = (v4: ipaddr.IPv4): boolean => IPV4_BLOCKED.some(([net, bits]) => v4.match(net, bits));
const IPV6_ALLOWED: Range<ipaddr.IPv6> = ipaddr.IPv6.parseCIDR(ALLOWED_IPV6_SPACE.cidr);
const IPV6_BLOCKED: readonly Range<ipaddr.IPv6>[] = BLOCKED_IPV6_RANGES.map((r) =>
  ipaddr.IPv6.parseCIDR(r.cidr),
);
const IPV6_EMBEDDING: readonly (readonly [ipaddr.IPv6, number, Ipv4Embedding])[] =
  IPV4_EMBEDDING_IPV6_RANGES.map((r) => {
    const [network, prefix] = ipaddr.IPv6.parseCIDR(r.cidr);
    return [network, prefix, r.embedding] as const;
  });
const ISATAP_HIGH: ReadonlySet<number> = new Set(ISATAP_INTERFACE_IDS.map((i) => i.high));
const METADATA: ReadonlySet<string> = new Set(
  METADATA_ADDRESSES.map((m) => ipaddr.parse(m.address).toString()),
);

/**
 * Lists the address rules that `address` breaks, in a stable order. Addresses inside `allow` pass the
 * private-address rule; one that carries an IPv4 address (NAT64, 6to4, Teredo, ISATAP, compatible or mapped)
 * passes the IPv4-embedding rule only when each IPv4 address it carries is public or inside `allow` itself, so an
 * entry for a NAT64 prefix opens the public IPv4 receivers behind the gateway, not the private networks behind it.
 * A metadata address passes only when `allow` names it as a single host, so that a broad block such as
 * `169.254.0.0/16` does not open the credential service by accident.
 */
export function checkIpAddress(address: ipaddr.IPv4 | ipaddr.IPv6, allow: CidrList): AddressRule[] {
  const out: AddressRule[] = [];
  const allowed = allow.length > 0 && cidrListContains(allow, address);
  if (address.kind() === 'ipv4') {
    const v4 = address as ipaddr.IPv4;
    if (!allowed && blockedV4(v4)) out.push('private_address');
    if (METADATA.has(v4.toString()) && !namesSingleHost(allow, v4)) out.push('metadata_service');
    return out;
  }
  const v6 = address as ipaddr.IPv6;
  const global = v6.match(IPV6_ALLOWED[0], IPV6_ALLOWED[1]) && !IPV6_BLOCKED.some(([n, b]) => v6.match(n, b));
  if (!allowed && !global) out.push('private_address');
  const embedded = embeddedIpv4(v6);
  const isatap = isatapIpv4(v6);
  const isatapPrivate = isatap !== undefined && blockedV4(isatap);
  const carried = [...embedded, ...(isatap ? [isatap] : [])];
  if (
    allowed
      ? carried.some((v4) => blockedV4(v4) && !cidrListContains(allow, v4))
      : embedded.length > 0 || isatapPrivate
  )
    out.push('ipv4_embedded');
  const metadata = METADATA.has(v6.toString()) || carried.some((v4) => METADATA.has(v4.toString()));
  if (metadata && !namesSingleHost(allow, v6)) out.push('metadata_service');
  return out;
}

/** The IPv4 addresses an IPv6 address carries, by the transition mechanisms of the data file. */
export function embeddedIpv4(v6: ipaddr.IPv6): ipaddr.IPv4[] {
  // The unspecified and loopback addresses sit inside ::/96 but are their own kinds, not IPv4-compatible ones
  // (RFC 4291 section 2.5.5.1 wants a global IPv4 address there); they are private, and reported as that only.
  const range = v6.range();
  if (range === 'unspecified' || range === 'loopback') return [];
  const p = v6.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  for (const [network, bits, embedding] of IPV6_EMBEDDING) {
    if (!v6.match(network, bits)) continue;
    switch (embedding) {
      case 'last32':
        return [v4(p[6], p[7])];
      case 'sixToFour':
        return [v4(p[1], p[2])];
      case 'teredo':
        // Server address in clear, client address with every bit inverted (RFC 4380 section 4).
        return [v4(p[2], p[3]), v4(p[6] ^ 0xffff, p[7] ^ 0xffff)];
    }
  }
  return [];
}

/** The IPv4 address in an ISATAP interface identifier (any prefix), if `v6` has one. */
export function isatapIpv4(v6: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = v6.parts;
  if (p[5] !== ISATAP_MARKER || !ISATAP_HIGH.has(p[4])) return undefined;
  return new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]);
}

function namesSingleHost(allow: CidrList, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  const full = address.kind() === 'ipv4' ? 32 : 128;
  return allow.some(
    (e) => e.prefix === full && e.kind === address.kind() && e.network.toString() === address.toString(),
  );
}

/**
 * True when a resolved address may be connected to: the delivery-time twin of the URL address rules, applied to
 * what DNS returned (which catches public names that resolve to private addresses). Accepts dotted-decimal IPv4
 * and IPv6, optionally in brackets. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, as dual-stack resolvers
 * return) is unwrapped and judged as the IPv4 address it connects to; other IPv4-embedding forms, zone ids and
 * anything unparsable are refused. `allow` defaults to the process-wide policy's allow list.
 */
export function isPublicAddress(address: string, allow?: CidrList): boolean {
  const list = allow ?? getDefaultUrlPolicy().allowCidrs ?? [];
  let text = address;
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  // A zone id means a link-local scope: never a public destination.
  if (text.includes('%')) return false;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) parsed = ipaddr.IPv4.parse(text);
  else if (ipaddr.IPv6.isValid(text)) {
    const v6 = ipaddr.IPv6.parse(text);
    parsed = v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  } else return false;
  return checkIpAddress(parsed, list).length === 0;
}
