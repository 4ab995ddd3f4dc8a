import ipaddr from 'ipaddr.js';

/** One parsed block of an allow list. */
export interface CidrEntry {
  /** The block as written by the operator, normalized (`10.0.0.0/8`, `fd00::/8`). */
  readonly cidr: string;
  readonly kind: 'ipv4' | 'ipv6';
  readonly prefix: number;
  /** Network address, used for matching. */
  readonly network: ipaddr.IPv4 | ipaddr.IPv6;
}

/** A parsed, validated list of CIDR blocks (see {@link parseCidrList}). */
export type CidrList = readonly CidrEntry[];

/**
 * Parses a comma-separated CIDR list such as `127.0.0.1/32,10.0.0.0/8,fd00::/8`. Blank text gives an empty
 * list; spaces around entries are ignored; a bare address means a single host. Throws an Error naming the first
 * bad entry, so that a typo in `TARGET_ALLOW_CIDRS` stops the boot instead of silently allowing nothing, or too
 * much.
 */
export function parseCidrList(text: string): CidrList {
  if (text.trim() === '') return [];
  return text.split(',').map((raw, index) => {
    const entry = raw.trim();
    try {
      return parseCidr(entry);
    } catch (e) {
      throw new Error(`invalid CIDR list entry ${index + 1} "${entry}": ${(e as Error).message}`);
    }
  });
}

/** One CIDR block (or a bare address: a single host); throws an Error saying what is wrong with it. */
export function parseCidr(entry: string): CidrEntry {
  const fail = (why: string): never => {
    throw new Error(why);
  };
  if (entry === '') fail('empty entry');
  if (entry.includes('%')) fail('zone ids are not allowed');
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const prefixText = slash === -1 ? null : entry.slice(slash + 1);

  let network: ipaddr.IPv4 | ipaddr.IPv6;
  // Only the canonical IPv4 spelling: `10.1/8` or `012.0.0.0/8` would be read differently by different tools.
  if (ipaddr.IPv4.isValidFourPartDecimal(address)) network = ipaddr.IPv4.parse(address);
  else if (ipaddr.IPv6.isValid(address)) network = ipaddr.IPv6.parse(address);
  else return fail('not an IPv4 address in dotted-decimal form or an IPv6 address');

  const max = network.kind() === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== null) {
    if (!/^\d{1,3}$/.test(prefixText)) fail(`prefix length must be a number from 0 to ${max}`);
    prefix = Number(prefixText);
    if (prefix > max) fail(`prefix length must be a number from 0 to ${max}`);
  }
  // Host bits set usually mean a mistyped prefix (10.0.0.1/8 for 10.0.0.1/32); refusing it beats guessing.
  const base =
    network.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${network.toString()}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${network.toString()}/${prefix}`);
  if (base.toString() !== network.toString())
    fail(`host bits are set; did you mean ${base.toString()}/${prefix}?`);

  return { cidr: `${network.toString()}/${prefix}`, kind: network.kind(), prefix, network };
}

/** True when `address` lies inside one of the blocks of `list` of the same address family. */
export function cidrListContains(list: CidrList, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  for (const entry of list) {
    if (entry.kind === address.kind() && address.match(entry.network, entry.prefix)) return true;
  }
  return false;
}
