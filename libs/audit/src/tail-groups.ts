import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { groupsOfInfoReply } from './audit-stream.subscriber';

/**
 * The consumer group of an `audit tail` run without `--group`: `tail-` and a random UUID, destroyed when the tail
 * stops. A tail killed outright (SIGKILL, OOM kill, a lost host) cannot destroy it; {@link removeAbandonedTailGroups}
 * does, later. The name is reserved: `--group` refuses it, so a durable group is never taken for an abandoned one.
 */
export const THROWAWAY_TAIL_GROUP = /^tail-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A new throwaway group name. */
export function throwawayTailGroup(): string {
  return `tail-${randomUUID()}`;
}

/**
 * How long a tail's heartbeat lives, and how often a running tail renews it. A consumer's idle time cannot tell a
 * live tail from a dead one (Redis 7.0 counts it from the last entry delivered, so a tail of a quiet stream looks
 * idle for ever): a running tail keeps this key instead, set before its group is created.
 */
export const TAIL_HEARTBEAT_TTL_MS = 60_000;
export const TAIL_HEARTBEAT_EVERY_MS = 20_000;

/** The key a running tail keeps alive for its throwaway group. */
export function tailHeartbeatKey(stream: string, group: string): string {
  return `${stream}:tails:${group}`;
}

/**
 * Removes the throwaway `audit tail` groups of `stream` that no running tail keeps alive: the ones killed tails
 * left behind. Durable groups (any other name) are never touched. A tail cut off from Redis for longer than its
 * heartbeat, whose group went meanwhile, creates it again where it stood when it comes back. Returns how many
 * groups were removed.
 */
export async function removeAbandonedTailGroups(redis: Redis, stream: string): Promise<number> {
  // The names only (XINFO GROUPS): a group that goes between the listing and a further look at it would fail
  // that look with "no such key", indistinguishable from a missing stream.
  let reply: unknown;
  try {
    reply = await redis.call('XINFO', 'GROUPS', stream);
  } catch (e) {
    // No stream yet: no group either.
    if (e instanceof Error && /^ERR no such key/i.test(e.message)) return 0;
    throw e;
  }
  let removed = 0;
  for (const fields of groupsOfInfoReply(reply)) {
    const name = String(fields.get('name'));
    if (!THROWAWAY_TAIL_GROUP.test(name)) continue;
    if ((await redis.exists(tailHeartbeatKey(stream, name))) > 0) continue;
    removed += Number(await redis.call('XGROUP', 'DESTROY', stream, name));
  }
  return removed;
}
