import type Redis from 'ioredis';
import type { AuditEvent } from './audit-event.types';

/** One entry read from the audit stream. */
export interface AuditStreamEntry {
  /** The stream entry id (`<ms>-<n>`); differs between two publications of the same event. */
  entryId: string;
  /** The event, or null when the entry carries no parsable `event` field. */
  event: AuditEvent | null;
  /** True when the entry was delivered before (this consumer's own pending entries, or taken over from another). */
  reclaimed: boolean;
}

/** Called once per event; the entry is acknowledged only after it resolves. */
export type AuditEventHandler = (event: AuditEvent, entry: AuditStreamEntry) => Promise<void> | void;

/** How a subscriber reads. */
export interface AuditSubscriberOptions {
  stream: string;
  /** The consumer group: each entry goes to one consumer of the group; every group sees every entry. */
  group: string;
  /** This consumer's name within the group; reuse it across restarts to resume one's own pending entries. */
  consumer: string;
  /** Where a group created now starts: `$` (new entries only, the default) or `0` (the whole stream). */
  startId?: '$' | '0';
  /** Entries per read. */
  count?: number;
  /** How long one read waits for new entries; bounds how quickly {@link AuditStreamSubscriber.stop} is seen. */
  blockMs?: number;
  /** An entry pending (delivered, not acknowledged) longer than this is taken over from its consumer. */
  minIdleMs?: number;
  /** How often pending entries of other consumers are looked for. */
  claimEveryMs?: number;
  /**
   * How many recent event ids to remember: a republished event (same `id`, new entry) seen within this
   * window is acknowledged without calling the handler again. 0 turns de-duplication off.
   */
  dedupeWindow?: number;
  /** Told about handler failures, malformed entries (with the entry) and Redis errors (without); it never logs. */
  onError?: (error: unknown, entry?: AuditStreamEntry) => void;
}

/** Remembers the last `capacity` ids, oldest forgotten first. */
export class RecentIds {
  private readonly ids = new Set<string>();
  constructor(private readonly capacity: number) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    if (this.capacity <= 0 || this.ids.has(id)) return;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
  }
}

type RawEntry = [string, string[] | null];

/** The entries of one stream in an XREADGROUP reply (`[[stream, [[id, [k, v, ...]], ...]]]` or null). */
export function entriesOfReadReply(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const first = reply[0] as [string, RawEntry[]] | undefined;
  return Array.isArray(first?.[1]) ? first[1] : [];
}

/**
 * The next cursor, the claimed entries and the ids of trimmed entries of an XAUTOCLAIM reply
 * (`[cursor, entries, deleted?]`): Redis 7 drops pending entries the stream no longer holds from the pending list
 * and names them apart, where Redis 6.2 returns them among the entries without fields.
 */
export function parseAutoClaimReply(reply: unknown): {
  cursor: string;
  entries: RawEntry[];
  deleted: string[];
} {
  if (!Array.isArray(reply) || reply.length < 2) return { cursor: '0-0', entries: [], deleted: [] };
  return {
    cursor: String(reply[0]),
    entries: Array.isArray(reply[1]) ? (reply[1] as RawEntry[]) : [],
    deleted: Array.isArray(reply[2]) ? (reply[2] as unknown[]).map(String) : [],
  };
}

/** Decodes one raw entry; an entry deleted from the stream (trimmed) or without a JSON `event` yields null. */
export function decodeEntry([entryId, fields]: RawEntry, reclaimed = false): AuditStreamEntry {
  let event: AuditEvent | null = null;
  if (Array.isArray(fields)) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] !== 'event') continue;
      try {
        const parsed = JSON.parse(fields[i + 1]) as unknown;
        if (parsed && typeof parsed === 'object' && typeof (parsed as AuditEvent).id === 'string')
          event = parsed as AuditEvent;
      } catch {
        event = null;
      }
    }
  }
  return { entryId, event, reclaimed };
}

/**
 * A consumer-group subscriber of the audit stream. Entries are acknowledged (`XACK`) only after the handler
 * succeeds, so a consumer that crashes mid-way leaves them pending; another consumer of the group takes them
 * over (`XAUTOCLAIM`) once they have been idle for `minIdleMs`. Delivery is therefore at least once: the
 * event `id` is the de-duplication key, and recent ids are remembered to skip republished events.
 *
 * Give it a connection of its own: a blocking read holds the connection for up to `blockMs`.
 */
export class AuditStreamSubscriber {
  private readonly opts: Required<Omit<AuditSubscriberOptions, 'onError'>> &
    Pick<AuditSubscriberOptions, 'onError'>;
  private readonly seen: RecentIds;
  /** Where to create the group again should it disappear: after the last entry read (see {@link run}). */
  private resumeFrom: string | undefined;
  /** Entries read whose handler failed and that are still pending: a re-created group must read them again. */
  private readonly unhandled = new Set<string>();
  private stopped = false;
  private lastClaimAt = 0;
  /** The connection came back (see {@link run}): this consumer's own pending entries are read again first. */
  private rereadPending = false;

  constructor(
    private readonly redis: Redis,
    options: AuditSubscriberOptions,
  ) {
    this.opts = {
      startId: '$',
      count: 100,
      blockMs: 1000,
      minIdleMs: 30_000,
      claimEveryMs: 5_000,
      dedupeWindow: 10_000,
      ...options,
    };
    this.seen = new RecentIds(this.opts.dedupeWindow);
  }

  /**
   * Creates the group (and the stream) if missing, starting after `startId` (`$`: the end, `0`: the start, or an
   * entry id); an existing group keeps its position.
   */
  async ensureGroup(startId: string = this.opts.startId): Promise<void> {
    try {
      await this.redis.call('XGROUP', 'CREATE', this.opts.stream, this.opts.group, startId, 'MKSTREAM');
    } catch (e) {
      if (!(e instanceof Error && e.message.startsWith('BUSYGROUP'))) throw e;
    }
  }

  /**
   * Where the group stands: just before its oldest pending entry (of any consumer), or after the last entry
   * delivered to it; undefined when Redis does not say (XINFO not allowed, say).
   */
  private async groupPosition(): Promise<string | undefined> {
    try {
      const own = (await consumerGroups(this.redis, this.opts.stream)).find(
        (g) => g.name === this.opts.group,
      );
      if (!own) return undefined;
      return own.oldestPending !== undefined ? previousStreamId(own.oldestPending) : own.lastDelivered;
    } catch {
      // Not knowing the position is no reason not to read: a re-created group then starts from the beginning.
      return undefined;
    }
  }

  /** Where a group that disappeared is created again (see {@link run}). */
  private restartPosition(): string {
    let oldest: string | undefined;
    for (const id of this.unhandled)
      if (oldest === undefined || compareStreamIds(id, oldest) < 0) oldest = id;
    if (
      oldest !== undefined &&
      (this.resumeFrom === undefined || compareStreamIds(oldest, this.resumeFrom) <= 0)
    )
      return previousStreamId(oldest);
    return this.resumeFrom ?? '0';
  }

  /** Removes the group with its pending entries (for ephemeral groups). */
  async destroyGroup(): Promise<void> {
    await this.redis.call('XGROUP', 'DESTROY', this.opts.stream, this.opts.group);
  }

  /** Makes {@link run} return after the read in progress (at most `blockMs`). */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Reads until {@link stop}: first this consumer's own pending entries (a restart under the same name),
   * then new entries, reclaiming other consumers' stale pending entries every `claimEveryMs`. Survives Redis
   * outages (errors go to `onError`, then it backs off and resumes); returns only once stopped.
   */
  async run(handler: AuditEventHandler): Promise<void> {
    this.stopped = false;
    // A read whose answer was lost with its connection is sent again on the next one (ioredis, by default,
    // resends what was unanswered) and goes on from there: the entries the lost answer carried are already this
    // consumer's, pending, and only XAUTOCLAIM would find them, `minIdleMs` later and after newer ones. They are
    // read again at once instead.
    const reconnected = () => {
      this.rereadPending = true;
    };
    this.redis.on('ready', reconnected);
    try {
      await this.loop(handler);
    } finally {
      this.redis.off('ready', reconnected);
    }
  }

  private async loop(handler: AuditEventHandler): Promise<void> {
    let started = false;
    let everStarted = false;
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!started) {
          // A group that existed and is gone now (Redis restarted without its data, or the group was deleted) is
          // created again after the last entry this subscriber handled (before any it failed to handle), or
          // where the group stood when it started: from `$` it would skip every entry added meanwhile (the
          // relay's backlog of the outage among them), from `0` it would read a whole surviving stream again.
          // Stream ids grow with time, so the entries of a stream begun again come after it (unless Redis fails
          // over to a server whose clock is behind).
          await this.ensureGroup(everStarted ? this.restartPosition() : this.opts.startId);
          if (!everStarted) this.resumeFrom = await this.groupPosition();
          await this.drainOwnPending(handler);
          started = true;
          everStarted = true;
        }
        if (this.rereadPending) {
          this.rereadPending = false;
          await this.drainOwnPending(handler);
        }
        if (Date.now() - this.lastClaimAt >= this.opts.claimEveryMs) await this.reclaim(handler);
        if (!this.stopped) await this.readNew(handler);
        failures = 0;
      } catch (e) {
        if (this.stopped) break;
        // Redis away, or the group deleted under us: report, back off, and start over (recreating the group).
        this.opts.onError?.(e);
        started = false;
        failures++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(200 * 2 ** failures, 5000)));
      }
    }
  }

  /** Handles entries delivered to this consumer before and never acknowledged. Returns how many were seen. */
  async drainOwnPending(handler: AuditEventHandler): Promise<number> {
    let from = '0';
    let total = 0;
    while (!this.stopped) {
      const reply = await this.redis.call(
        'XREADGROUP',
        'GROUP',
        this.opts.group,
        this.opts.consumer,
        'COUNT',
        this.opts.count,
        'STREAMS',
        this.opts.stream,
        from,
      );
      const entries = entriesOfReadReply(reply);
      if (entries.length === 0) break;
      await this.handleAll(
        entries.map((raw) => decodeEntry(raw, true)),
        handler,
      );
      total += entries.length;
      from = entries[entries.length - 1][0];
    }
    return total;
  }

  /** Takes over entries other consumers left pending for `minIdleMs` and handles them. Returns how many. */
  async reclaim(handler: AuditEventHandler): Promise<number> {
    this.lastClaimAt = Date.now();
    let cursor = '0-0';
    let total = 0;
    // Bounded: one sweep over the pending list per call, so new entries are not starved by a huge backlog.
    for (let round = 0; round < 100 && !this.stopped; round++) {
      const reply = await this.redis.call(
        'XAUTOCLAIM',
        this.opts.stream,
        this.opts.group,
        this.opts.consumer,
        this.opts.minIdleMs,
        cursor,
        'COUNT',
        this.opts.count,
      );
      const { cursor: next, entries, deleted } = parseAutoClaimReply(reply);
      // Trimmed while pending (Redis 7 names them apart): reported like those Redis 6.2 returns without fields.
      await this.handleAll(
        [
          ...entries.map((raw) => decodeEntry(raw, true)),
          ...deleted.map((id) => decodeEntry([id, null], true)),
        ],
        handler,
      );
      total += entries.length + deleted.length;
      cursor = next;
      if (cursor === '0-0') break;
    }
    return total;
  }

  /** One blocking read of new entries. Returns how many were handled. */
  async readNew(handler: AuditEventHandler): Promise<number> {
    const reply = await this.redis.call(
      'XREADGROUP',
      'GROUP',
      this.opts.group,
      this.opts.consumer,
      'COUNT',
      this.opts.count,
      'BLOCK',
      this.opts.blockMs,
      'STREAMS',
      this.opts.stream,
      '>',
    );
    const entries = entriesOfReadReply(reply);
    await this.handleAll(
      entries.map((raw) => decodeEntry(raw)),
      handler,
    );
    return entries.length;
  }

  /**
   * Handles the entries of one read in order, then acknowledges those done with in one `XACK`, not one round trip
   * each. A consumer that dies before that acknowledgement gets them again, as at-least-once allows: the event id
   * tells them apart.
   */
  private async handleAll(entries: AuditStreamEntry[], handler: AuditEventHandler): Promise<void> {
    const done: string[] = [];
    for (const entry of entries) if (await this.handle(entry, handler)) done.push(entry.entryId);
    if (done.length > 0) await this.redis.call('XACK', this.opts.stream, this.opts.group, ...done);
  }

  /** Hands one entry over; returns whether it is done with (to be acknowledged), or left pending for a retry. */
  private async handle(entry: AuditStreamEntry, handler: AuditEventHandler): Promise<boolean> {
    if (this.resumeFrom === undefined || compareStreamIds(entry.entryId, this.resumeFrom) > 0)
      this.resumeFrom = entry.entryId;
    this.unhandled.delete(entry.entryId);
    const { event } = entry;
    if (event === null) {
      // Trimmed away or malformed: nothing to hand over, and retrying will not fix it.
      this.opts.onError?.(new Error(`audit stream entry ${entry.entryId} carries no event`), entry);
      return true;
    }
    if (!this.seen.has(event.id)) {
      try {
        await handler(event, entry);
      } catch (e) {
        // Left pending: this or another consumer retries it once it has been idle for minIdleMs.
        this.unhandled.add(entry.entryId);
        // Bounded: one taken over and handled by another consumer is never heard of again here.
        if (this.unhandled.size > MAX_UNHANDLED) this.unhandled.delete(this.unhandled.values().next().value!);
        this.opts.onError?.(e, entry);
        return false;
      }
      this.seen.add(event.id);
    }
    return true;
  }
}

/** Orders two stream entry ids (`<ms>-<seq>`). */
export function compareStreamIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  const byMs = BigInt(am) - BigInt(bm);
  if (byMs !== 0n) return byMs > 0n ? 1 : -1;
  const bySeq = BigInt(as) - BigInt(bs);
  return bySeq === 0n ? 0 : bySeq > 0n ? 1 : -1;
}

/** Failed entries remembered for a group re-creation (see `unhandled`). */
const MAX_UNHANDLED = 10_000;

/** The stream entry id just before `id` (`<ms>-<seq>`), so that a group created there reads `id` next. */
export function previousStreamId(id: string): string {
  const [ms, seq = '0'] = id.split('-');
  if (BigInt(seq) > 0n) return `${ms}-${BigInt(seq) - 1n}`;
  if (BigInt(ms) > 0n) return `${BigInt(ms) - 1n}-18446744073709551615`;
  return '0-0';
}

/** A consumer group of a stream as far as its position goes. */
export interface ConsumerGroupPosition {
  name: string;
  /** The last entry delivered to the group (`0-0` before any). */
  lastDelivered: string;
  /** The oldest entry delivered to one of its consumers and not acknowledged yet, if any. */
  oldestPending?: string;
}

/** The groups of an XINFO GROUPS reply, each as its fields by name (`name`, `pending`, `last-delivered-id`…). */
export function groupsOfInfoReply(reply: unknown): Map<string, unknown>[] {
  return (Array.isArray(reply) ? (reply as unknown[][]) : []).map((group) => {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < group.length; i += 2) fields.set(String(group[i]), group[i + 1]);
    return fields;
  });
}

/** The consumer groups of `stream` and where each stands (XINFO GROUPS, and XPENDING for those with pending). */
export async function consumerGroups(redis: Redis, stream: string): Promise<ConsumerGroupPosition[]> {
  const out: ConsumerGroupPosition[] = [];
  for (const fields of groupsOfInfoReply(await redis.call('XINFO', 'GROUPS', stream))) {
    const name = String(fields.get('name'));
    const position: ConsumerGroupPosition = { name, lastDelivered: String(fields.get('last-delivered-id')) };
    if (Number(fields.get('pending')) > 0) {
      // XPENDING's summary: [count, smallest id, greatest id, consumers].
      const summary = await redis.call('XPENDING', stream, name);
      const oldest: unknown = Array.isArray(summary) ? (summary as unknown[])[1] : undefined;
      if (typeof oldest === 'string') position.oldestPending = oldest;
    }
    out.push(position);
  }
  return out;
}
