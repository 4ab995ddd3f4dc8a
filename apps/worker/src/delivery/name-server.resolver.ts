import { promises as dns } from 'node:dns';
import type { HostResolver, ResolvedAddress } from './ssrf-safe.sender';

/** Where and how patiently {@link nameServerResolver} asks. */
export interface NameServerResolverOptions {
  /** Name servers (`address` or `address:port`) to ask instead of those of `/etc/resolv.conf`. */
  servers?: string[];
  /** Time the name servers have to answer one try of a query. Default 2,000 ms. */
  timeoutMs?: number;
  /** Tries of a query (each asks every name server once), the next made only when none answered. Default 3. */
  tries?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;
const DEFAULT_TRIES = 3;

// What the delivery log says when no address came back (c-ares' own messages name its internal calls, queryA and
// queryAaaa); a code not listed is shown as it is.
const FAILURES: Record<string, string> = {
  ENOTFOUND: 'no such host',
  ENODATA: 'no addresses',
  ETIMEOUT: 'the name servers did not answer',
  ESERVFAIL: 'the name servers failed to answer',
  EREFUSED: 'the name servers refused the query',
  ECONNREFUSED: 'the name servers could not be reached',
};
// Failures that say only that the name has no address of one family: the other family's answer decides.
const NO_ADDRESS = new Set(['ENOTFOUND', 'ENODATA']);

const codeOf = (error: unknown): string =>
  typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
    ? (error as { code: string }).code
    : 'EUNKNOWN';

/**
 * Resolves receivers' host names by asking the name servers directly (c-ares, as `dns.resolve4` and
 * `dns.resolve6` do), on the event loop. The system resolver (`dns.lookup`, getaddrinfo) runs on libuv's thread
 * pool instead, four threads by default, and a lookup that no name server answers holds its thread for as long as
 * the C library waits: a project whose webhooks name many hosts whose name servers never answer would hold every
 * thread, and every other receiver's lookups (and the worker's file and crypto work) would queue behind them. Here
 * an unanswered query costs a timer and a place in c-ares' queue, whatever the number of them.
 *
 * A and AAAA are asked at the same time; the addresses are IPv4 first (a container without an IPv6 route connects
 * at once; Node's happy eyeballs tries the others), and a name with addresses of one family only resolves to
 * those. `/etc/hosts` is not read, nor are `search` domains applied: a receiver is a public name, and a name only
 * the worker's own host or network knows is not one to deliver to.
 */
export function nameServerResolver(options: NameServerResolverOptions = {}): HostResolver {
  // One try per query here, and the tries are ours: c-ares doubles its wait on each try of its own (2, 4 and 8 s,
  // 14 s before a name server that never answers is given up on, past the attempt's 10 s), where each try here
  // waits the same timeout.
  const resolver = new dns.Resolver({ timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, tries: 1 });
  if (options.servers !== undefined) resolver.setServers(options.servers);
  const tries = options.tries ?? DEFAULT_TRIES;
  const ask = async <T>(query: () => Promise<T>): Promise<T> => {
    for (let tried = 1; ; tried += 1) {
      try {
        return await query();
      } catch (error) {
        if (tried >= tries || codeOf(error) !== 'ETIMEOUT') throw error;
      }
    }
  };

  return async (hostname: string): Promise<ResolvedAddress[]> => {
    const [v4, v6] = await Promise.allSettled([
      ask(() => resolver.resolve4(hostname)),
      ask(() => resolver.resolve6(hostname)),
    ]);
    const addresses: ResolvedAddress[] = [
      ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
    if (addresses.length > 0) return addresses;
    const codes = [v4, v6].flatMap((answer) => (answer.status === 'rejected' ? [codeOf(answer.reason)] : []));
    // Both empty: the sender reports a name without addresses.
    if (codes.length === 0) return [];
    // The failure that says most: a server that did not answer rather than the other family's "no such name".
    const code = codes.find((candidate) => !NO_ADDRESS.has(candidate)) ?? codes[0];
    throw Object.assign(new Error(FAILURES[code] ?? code), { code });
  };
}
