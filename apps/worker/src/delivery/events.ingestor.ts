import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import { compareStreamIds, consumerGroups } from '@app/audit';
import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  DeliveriesService,
  eventIdForPublisherId,
  eventIdFromStreamEntry,
  rejectedEventsStream,
  type PublishedEvent,
} from '@app/domain';
import { createRedis, withTimeout } from '@app/queue';
import { MAX_JSON_DEPTH, isWebhookEvent, nestsDeeperThan } from '@app/validation';

/** Tuning of the events consumer; tests shorten the reclaim idle time. */
export interface EventsIngestOptions {
  /** Consumer group name on EVENTS_STREAM. */
  group: string;
  /** Entries read per round. */
  batchSize: number;
  /** How long one read blocks waiting for entries (also the longest shutdown wait). */
  blockMs: number;
  /** Entries pending this long with another consumer are taken over (its process is presumed dead). */
  claimMinIdleMs: number;
  /** How often pending entries of dead consumers are looked for. */
  claimEveryMs: number;
  /** How often the stream is trimmed of entries every consumer group is done with. */
  trimEveryMs: number;
}

/** Token of {@link EventsIngestOptions}. */
export const EVENTS_INGEST_OPTIONS = Symbol('EVENTS_INGEST_OPTIONS');

/** Production defaults of {@link EventsIngestOptions}. */
export const DEFAULT_EVENTS_INGEST_OPTIONS: EventsIngestOptions = {
  group: 'deliveries',
  batchSize: 500,
  blockMs: 1000,
  claimMinIdleMs: 60_000,
  claimEveryMs: 30_000,
  trimEveryMs: 60_000,
};

/** Entries one XTRIM call may remove, and calls per trim. */
const TRIM_LIMIT = 10_000;
const TRIM_ROUNDS = 100;
/**
 * A consumer of the group that has been idle this long and holds nothing pending is one a killed worker left
 * behind (a worker that stops cleanly leaves the group itself): it is removed, or every SIGKILL, OOM kill or lost
 * node would add one to the group for ever. A live consumer removed while quiet is harmless: its next read
 * creates it again.
 */
const DEAD_CONSUMER_IDLE_MS = 10 * 60_000;
/**
 * Removes a consumer only if it holds no pending entry, atomically: deleting one that holds entries would drop
 * them from the group's pending list, and nobody would ever take them over. -1 when it holds some.
 */
const DELETE_CONSUMER_IF_EMPTY = `
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1`;
/** A stream this long, held back by another service's group, is worth a warning. */
const LONG_STREAM = 1_000_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A publisher's own event id: 1 to 128 visible ASCII characters (receivers get the `evt_` id it maps to). */
const PUBLISHER_EVENT_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * Entries the rejected stream keeps (approximately: whole nodes), and the bytes of one entry's fields kept: at
 * most about 8 MiB of Redis memory, whatever publishers send.
 */
const REJECTED_MAXLEN = 1000;
/**
 * Largest event accepted (its `event` field, in bytes): four times the API's largest request body, ample for an
 * event, and a bound on what one event costs the delivery log (a copy per subscribed webhook) and receivers.
 */
const MAX_EVENT_BYTES = 256 * 1024;
const REJECTED_FIELDS_MAX_BYTES = 8192;
/**
 * Longest field Redis sends the worker whole in a read of many entries (see {@link CUT_FIELDS}): one byte past the
 * largest event, so an `event` cut here is still seen, and set aside, as too large.
 */
const MAX_FIELD_BYTES = MAX_EVENT_BYTES + 1;
/**
 * Bytes of whole fields one script call fetches before it stops (the entry that crosses the line included): Redis
 * copies what a script reads into the script's memory, some 4 ms a MiB during which it serves nobody else, so a
 * call over entries of many MiB each ends after a few of them instead of holding Redis for seconds.
 */
const SCRIPT_FETCH_BYTES = 16 * 1024 * 1024;
/**
 * Lua: the fields of one entry (false for an entry deleted while pending) cut to `max` bytes each (`string.sub`
 * counts bytes), and their whole size. Entries are fetched one at a time, and a whole field, once cut, is collected
 * at once: the script holds one entry whole at most, never a read's worth.
 */
const CUT_FIELDS = `
local function cut(fields, max)
  if not fields then return fields, 0 end
  local size, cutSome = 0, false
  for i = 1, #fields do
    size = size + #fields[i]
    if #fields[i] > max then
      fields[i] = string.sub(fields[i], 1, max)
      cutSome = true
    end
  end
  if cutSome then collectgarbage('collect') end
  return fields, size
end`;
/**
 * XREADGROUP (without BLOCK: a script cannot wait) of up to ARGV[3] entries after ARGV[4] ('>': new ones), every
 * field cut by Redis to ARGV[5] bytes before it is sent, ending early once ARGV[6] bytes were fetched (the entries
 * not fetched stay for the next read): a read of 500 entries of 8 MiB otherwise brought 4 GiB into the worker,
 * which killed it, and then every worker that took the entries over, so the stream stopped. Answers like
 * XREADGROUP: `[[stream, entries]]`, or nil when there is nothing.
 */
const READ_CUT = `${CUT_FIELDS}
local max, budget, from, entries, fetched = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[4], {}, 0
for n = 1, tonumber(ARGV[3]) do
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], from)
  local entry = reply and reply[1][2][1]
  if not entry then break end
  local fields, size = cut(entry[2], max)
  entries[n] = { entry[1], fields }
  fetched = fetched + size
  if fetched >= budget then break end
  -- Pending entries are read after the last one; new ones are simply the next.
  if from ~= '>' then from = entry[1] end
end
if #entries == 0 then return false end
return { { KEYS[1], entries } }`;
/**
 * XAUTOCLAIM (group ARGV[1], consumer ARGV[2], idle ARGV[3], from ARGV[4]) of up to ARGV[5] entries, one at a time
 * by id, each then read alone with its fields cut to ARGV[6] bytes, and ending early once ARGV[7] bytes were
 * fetched, as in {@link READ_CUT}. Answers like XAUTOCLAIM: the cursor to go on from, the entries, the ids of
 * entries deleted while pending. A claim by id (JUSTID) leaves the entry's delivery count as it was, so it is
 * raised here, as a claim that returns the entry would: XPENDING then shows how often an entry was taken over.
 */
const AUTOCLAIM_CUT = `${CUT_FIELDS}
local max, budget, cursor, entries, deleted, fetched = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[4], {}, {}, 0
for n = 1, tonumber(ARGV[5]) do
  local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], cursor, 'COUNT', 1, 'JUSTID')
  cursor = reply[1]
  for _, id in ipairs(reply[3] or {}) do deleted[#deleted + 1] = id end
  local id = reply[2][1]
  if id then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'RETRYCOUNT', pending[4] + 1, 'JUSTID')
    local found = redis.call('XRANGE', KEYS[1], id, id)[1]
    local fields, size = cut(found and found[2] or false, max)
    entries[#entries + 1] = { id, fields }
    fetched = fetched + size
  end
  if cursor == '0-0' or fetched >= budget then break end
end
return { cursor, entries, deleted }`;
/** Bytes of entry fields parsed and recorded together (see `handle`); some 80 MiB of objects at most. */
const RECORD_PART_BYTES = 4 * 1024 * 1024;

/**
 * One entry as read: its id, and its fields as raw bytes (null for an entry deleted while pending). Read as bytes,
 * not as strings, so that an `event` that is not valid UTF-8 is seen as such instead of having its bad bytes
 * silently replaced by U+FFFD (and delivered so).
 */
type StreamEntry = [id: string, fields: Buffer[] | null];
/** Entries as Redis sends them when read with `callBuffer`. */
type RawEntry = [id: Buffer, fields: Buffer[] | null];

const asEntries = (raw: RawEntry[]): StreamEntry[] => raw.map(([id, fields]) => [id.toString(), fields]);
const entryBytes = ([, fields]: StreamEntry): number => fields?.reduce((n, f) => n + f.length, 0) ?? 0;
const EVENT_FIELD = Buffer.from('event');
/** Entries a log line about entries that are not events names (with `count`, how many there were). */
const LOGGED_ENTRIES = 20;
const loggedEntries = (rejected: { entry: string; reason: string }[]): { entry: string; reason: string }[] =>
  rejected.slice(0, LOGGED_ENTRIES).map(({ entry, reason }) => ({ entry, reason }));
/** Strict: invalid UTF-8 is an error, not U+FFFD; a BOM is kept (and then is not JSON, as before). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads the events publishers add to EVENTS_STREAM, through a consumer group so replicas share the work, and
 * fans each out to its project's webhooks. An entry is acknowledged only once its deliveries are committed and
 * queued; an entry that cannot be an event is set aside in the rejected stream, acknowledged and logged, never
 * retried forever. Entries left pending by a consumer that died are taken over with XAUTOCLAIM.
 */
@Injectable()
export class EventsIngestor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(EventsIngestor.name);
  private readonly consumer = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly stream: string;
  private redis: Redis | undefined;
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private lastClaimAt = 0;
  private lastTrimAt = 0;
  /** Aborted at shutdown: ends the loop's pause after a failed round at once. */
  private readonly stopping = new AbortController();
  /** Set when the connection is (re)established: the next read re-reads this consumer's own pending entries. */
  private rereadPending = false;

  constructor(
    private readonly deliveries: DeliveriesService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(EVENTS_INGEST_OPTIONS) private readonly options: EventsIngestOptions,
  ) {
    this.stream = config.events.stream;
  }

  onApplicationBootstrap(): void {
    // Its own connection: a blocking read would hold up every other command on a shared one.
    this.redis = createRedis(this.config.redis, { connectionName: 'events-ingest' });
    this.redis.on('error', () => undefined);
    // A read whose answer was lost with its connection is sent again on the next one (ioredis resends what was
    // unanswered) and goes on from there: the entries the lost answer carried are already this consumer's,
    // pending, and only XAUTOCLAIM would find them, a minute or more later. They are read again at once instead.
    this.redis.on('ready', () => {
      this.rereadPending = true;
    });
    this.running = true;
    this.loopDone = this.loop(this.redis);
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    // While Redis is away the loop's command waits in the client's queue for as long as Redis stays away (a
    // disconnect does not fail it while the client waits to reconnect): stop reconnecting and let the loop go,
    // leaving the group as it is. Nothing is lost: unacknowledged entries stay pending for the next consumer.
    if (this.redis && this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    // A Redis that hangs (connected, not answering) would hold the loop's blocking read, and the tidying after it,
    // for as long as it hangs: each gets the read's own block time and a second, then the connection is dropped.
    const bound = this.options.blockMs + 1000;
    try {
      await withTimeout(this.loopDone, bound, () => new Error('the last read was not answered'));
      if (this.redis) await withTimeout(this.leaveGroup(this.redis), bound, () => new Error('not answered'));
    } catch {
      // Nothing lost: entries not acknowledged stay pending for the next consumer.
    }
    this.redis?.disconnect();
  }

  /**
   * Removes this process's consumer from the group when it holds no pending entry, so that restarts do not
   * pile up dead consumers. One that still holds entries stays, for another replica to take them over: deleting
   * it would drop them from the group's pending list.
   */
  private async leaveGroup(redis: Redis): Promise<void> {
    try {
      const pending = await redis.xpending(this.stream, this.options.group, '-', '+', 1, this.consumer);
      if (pending.length === 0)
        await redis.xgroup('DELCONSUMER', this.stream, this.options.group, this.consumer);
    } catch {
      // Redis away or the group gone: nothing to tidy, and nothing lost.
    }
  }

  private async loop(redis: Redis): Promise<void> {
    let groupReady = false;
    // '0' re-reads this consumer's own unacknowledged entries (after a failed round); '>' reads new ones.
    let readFrom = '0';
    let failing = false;
    while (this.running) {
      try {
        if (!groupReady) {
          await this.ensureGroup(redis);
          groupReady = true;
        }
        if (Date.now() - this.lastClaimAt >= this.options.claimEveryMs) {
          this.lastClaimAt = Date.now();
          await this.reclaim(redis);
        }
        if (Date.now() - this.lastTrimAt >= this.options.trimEveryMs) {
          this.lastTrimAt = Date.now();
          // Housekeeping: a failure here must not hold up reading.
          await this.trim(redis).catch((error: unknown) =>
            this.logger.warn({ err: String(error) }, 'trimming the events stream failed; next time'),
          );
          await this.forgetDeadConsumers(redis).catch((error: unknown) =>
            this.logger.warn({ err: String(error) }, 'removing dead consumers failed; next time'),
          );
        }
        if (this.rereadPending) {
          this.rereadPending = false;
          readFrom = '0';
        }
        let entries = await this.read(redis, readFrom);
        if (readFrom === '0' && entries.length === 0) readFrom = '>';
        else if (readFrom === '>' && entries.length === 0) {
          // The one entry the wait brought, and what came with it, are handled together, as one read.
          entries = await this.awaitNew(redis);
          if (entries.length > 0) entries.push(...(await this.read(redis, '>')));
        }
        await this.handle(redis, entries);
        if (failing) this.logger.log('reading published events again');
        failing = false;
      } catch (error) {
        readFrom = '0';
        if (String(error).includes('NOGROUP')) groupReady = false;
        // Once per spell of failures: an outage of Postgres or Redis fails every round, once a second.
        if (!failing) this.logger.warn({ err: String(error) }, 'reading published events failed; retrying');
        failing = true;
        await sleep(1000, undefined, { signal: this.stopping.signal }).catch(() => undefined);
      }
    }
  }

  /**
   * Removes the entries every consumer group of the stream is done with: those before the oldest entry any group
   * still has pending, or has not yet read. Publishers add without a cap (`XADD <stream> * event …`), so without
   * this the stream would grow for ever. Groups of other services on the stream are respected the same way (a
   * reader without a group, plain XREAD, is not). Nothing is trimmed while this service's own group is missing
   * (it is created again from the start of the stream). Trims approximately (whole stream nodes), at most
   * {@link TRIM_LIMIT} entries per call, so a long backlog goes in steps instead of one long blocking call.
   * A stream left longer than `longStream` because another reader's group holds it back (behind, or not reading
   * at all) is logged as a warning. Returns the number of entries removed.
   */
  async trim(redis: Redis, longStream = LONG_STREAM): Promise<number> {
    let keep: { id: string; group: string } | undefined;
    let ours = false;
    for (const group of await consumerGroups(redis, this.stream)) {
      ours ||= group.name === this.options.group;
      const oldest = group.oldestPending ?? group.lastDelivered;
      if (keep === undefined || compareStreamIds(oldest, keep.id) < 0)
        keep = { id: oldest, group: group.name };
    }
    if (!ours || keep === undefined) return 0;
    let removed = 0;
    // '0-0': a group that has read nothing yet; nothing is trimmed before it.
    for (let round = 0; round < TRIM_ROUNDS && keep.id !== '0-0'; round++) {
      // MINID removes entries whose id is below `keep` (with `~`, only whole nodes of them); `keep` itself stays.
      const n = Number(await redis.call('XTRIM', this.stream, 'MINID', '~', keep.id, 'LIMIT', TRIM_LIMIT));
      removed += n;
      if (n === 0) break;
    }
    if (keep.group !== this.options.group) {
      const length = await redis.xlen(this.stream);
      if (length > longStream)
        this.logger.warn(
          { stream: this.stream, length, group: keep.group, position: keep.id },
          'the events stream is long: a consumer group of another reader holds its trimming back',
        );
    }
    return removed;
  }

  /**
   * Removes from the group the consumers that killed workers left behind: idle for `minIdleMs` with nothing
   * pending (entries a dead consumer held are taken over by XAUTOCLAIM first, after which it holds none). Never
   * this process's own consumer. Returns how many were removed.
   */
  async forgetDeadConsumers(redis: Redis, minIdleMs = DEAD_CONSUMER_IDLE_MS): Promise<number> {
    const consumers = (await redis.xinfo('CONSUMERS', this.stream, this.options.group)) as unknown[][];
    let removed = 0;
    for (const consumer of consumers) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < consumer.length; i += 2) info.set(String(consumer[i]), consumer[i + 1]);
      const name = String(info.get('name'));
      if (name === this.consumer || Number(info.get('pending')) > 0 || Number(info.get('idle')) < minIdleMs)
        continue;
      const result = await redis.eval(DELETE_CONSUMER_IF_EMPTY, 1, this.stream, this.options.group, name);
      if (Number(result) >= 0) removed += 1;
    }
    return removed;
  }

  /** Up to a batch of entries after `from` ('>': new ones), each field cut to {@link MAX_FIELD_BYTES}; waits not. */
  private async read(redis: Redis, from: string): Promise<StreamEntry[]> {
    const reply = (await redis.callBuffer(
      'EVAL',
      READ_CUT,
      1,
      this.stream,
      this.options.group,
      this.consumer,
      this.options.batchSize,
      from,
      MAX_FIELD_BYTES,
      SCRIPT_FETCH_BYTES,
    )) as [Buffer, RawEntry[]][] | null;
    return (reply ?? []).flatMap(([, e]) => asEntries(e));
  }

  /**
   * Waits up to the block time for a new entry and reads it: one, whole (a script cannot wait, and a blocking read
   * cannot cut). Entries come to a waiting reader as they are added, and whatever else has come with it is read
   * next by {@link read}, cut.
   */
  private async awaitNew(redis: Redis): Promise<StreamEntry[]> {
    const reply = (await redis.callBuffer(
      'XREADGROUP',
      'GROUP',
      this.options.group,
      this.consumer,
      'COUNT',
      1,
      'BLOCK',
      this.options.blockMs,
      'STREAMS',
      this.stream,
      '>',
    )) as [Buffer, RawEntry[]][] | null;
    return (reply ?? []).flatMap(([, e]) => asEntries(e));
  }

  private async ensureGroup(redis: Redis): Promise<void> {
    try {
      // From the start of the stream: events published before the first worker ever ran are delivered too.
      await redis.xgroup('CREATE', this.stream, this.options.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String(error).includes('BUSYGROUP')) throw error;
    }
  }

  private async reclaim(redis: Redis): Promise<void> {
    let cursor = '0-0';
    do {
      const [next, raw, deleted] = (await redis.callBuffer(
        'EVAL',
        AUTOCLAIM_CUT,
        1,
        this.stream,
        this.options.group,
        this.consumer,
        this.options.claimMinIdleMs,
        cursor,
        this.options.batchSize,
        MAX_FIELD_BYTES,
        SCRIPT_FETCH_BYTES,
      )) as [Buffer, RawEntry[], Buffer[] | undefined];
      // Entries deleted from the stream while pending (Redis 7 drops them from the pending list and names them
      // apart): set aside and logged like those this consumer finds deleted when it reads its own again, instead
      // of vanishing without a trace.
      const entries = [...asEntries(raw), ...(deleted ?? []).map((id): StreamEntry => [id.toString(), null])];
      if (entries.length > 0) {
        this.logger.log({ entries: entries.length }, 'took over events left pending by another consumer');
        await this.handle(redis, entries);
      }
      cursor = next.toString();
    } while (cursor !== '0-0' && this.running);
  }

  /**
   * Records and acknowledges what one read returned, in parts of at most {@link RECORD_PART_BYTES} of entry
   * fields (an entry larger than that alone): an event parsed takes up to some twenty times its bytes in objects
   * (256 KiB of `[{},{},…]` is 5 MiB of them), and a read of 500 such events, parsed at once, held some 2.6 GiB,
   * enough to kill a worker with a smaller heap, and the next one that took the entries over after it.
   */
  private async handle(redis: Redis, entries: StreamEntry[]): Promise<void> {
    for (let start = 0; start < entries.length;) {
      let end = start + 1;
      for (let bytes = entryBytes(entries[start]); end < entries.length; end++) {
        bytes += entryBytes(entries[end]);
        if (bytes > RECORD_PART_BYTES) break;
      }
      // The entry's place in the read orders the delivery log across parts as within one.
      await this.handlePart(redis, entries.slice(start, end), start);
      start = end;
    }
  }

  private async handlePart(redis: Redis, entries: StreamEntry[], firstIndex: number): Promise<void> {
    const events: PublishedEvent[] = [];
    const rejected: { entry: string; reason: string; fields: Buffer[] | null }[] = [];
    for (const [id, fields] of entries) {
      const parsed = this.parse(id, fields);
      if (typeof parsed === 'string') rejected.push({ entry: id, reason: parsed, fields });
      else events.push(parsed);
    }
    await this.deliveries.recordPublished(events, firstIndex);
    if (rejected.length > 0) {
      // One line per read, not per entry: a publisher gone wrong sends thousands a second.
      this.logger.warn(
        { count: rejected.length, entries: loggedEntries(rejected) },
        'invalid events set aside in the rejected stream',
      );
      await this.setAside(redis, rejected);
    }
    await redis.xack(this.stream, this.options.group, ...entries.map(([id]) => id));
  }

  /**
   * Keeps entries that are not events in `<EVENTS_STREAM>:rejected` (entry id, reason, and the entry's fields as
   * JSON, cut at 8 KiB), capped at about 1,000 entries, before they are acknowledged: a publisher can read why its
   * events went nowhere. Best effort: when Redis refuses (a user without rights on that key, say), the entries are
   * only logged, so that one entry that is not an event never holds up the events after it.
   */
  private async setAside(
    redis: Redis,
    rejected: { entry: string; reason: string; fields: Buffer[] | null }[],
  ): Promise<void> {
    try {
      const pipeline = redis.pipeline();
      for (const r of rejected) {
        pipeline.xadd(
          rejectedEventsStream(this.stream),
          'MAXLEN',
          '~',
          REJECTED_MAXLEN,
          '*',
          'entry',
          r.entry,
          'reason',
          r.reason,
          'fields',
          fieldsAsJson(r.fields, REJECTED_FIELDS_MAX_BYTES),
        );
      }
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    } catch (error) {
      this.logger.error(
        { err: String(error), count: rejected.length, entries: loggedEntries(rejected) },
        'could not keep entries that are not events in the rejected stream; acknowledged anyway',
      );
    }
  }

  /** The event of one stream entry, or why it is not one. */
  private parse(entryId: string, fields: Buffer[] | null): PublishedEvent | string {
    if (!fields) return 'entry was deleted from the stream';
    const at = fields.findIndex((f, i) => i % 2 === 0 && f.equals(EVENT_FIELD));
    if (at < 0 || at + 1 >= fields.length) return 'no "event" field';
    // `XADD <stream> * event <a> event <b>` is one entry, not two events: taking one of them would lose the other.
    if (fields.some((f, i) => i % 2 === 0 && i !== at && f.equals(EVENT_FIELD)))
      return 'more than one "event" field';
    const raw = fields[at + 1];
    if (raw.length > MAX_EVENT_BYTES) return `"event" is larger than ${MAX_EVENT_BYTES / 1024} KiB`;
    let text: string;
    try {
      text = UTF8.decode(raw);
    } catch {
      return '"event" is not valid UTF-8';
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return '"event" is not JSON';
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return '"event" is not a JSON object';
    // Its body is written out for every delivery: JSON nested thousands deep would overflow the stack there, and
    // fail the whole batch again and again.
    if (nestsDeeperThan(body)) return `"event" nests deeper than ${MAX_JSON_DEPTH} levels`;
    const e = body as Record<string, unknown>;
    if (!isWebhookEvent(e.type)) return 'type is not an event type of the catalog';
    if (typeof e.project_id !== 'string' || !UUID.test(e.project_id)) return 'project_id is not a UUID';
    if (e.id !== undefined && (typeof e.id !== 'string' || !PUBLISHER_EVENT_ID.test(e.id))) {
      return 'id is not a string of 1 to 128 visible ASCII characters';
    }
    if (e.text !== undefined && e.text !== null && typeof e.text !== 'string') return 'text is not a string';
    if (!('data' in e)) return 'data is missing';
    return {
      id:
        typeof e.id === 'string' ? eventIdForPublisherId(e.id) : eventIdFromStreamEntry(this.stream, entryId),
      type: e.type,
      projectId: e.project_id.toLowerCase(),
      text: typeof e.text === 'string' ? e.text : null,
      data: e.data,
      created: entryTime(entryId),
    };
  }
}

/** The last millisecond an RFC 3339 timestamp can carry (9999-12-31T23:59:59.999Z). */
const LAST_RFC3339_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * When the entry was published: the time part of its stream id. A publisher may give its entries ids of its own
 * (`XADD <stream> <ms>-<seq> …`), up to 2^64 - 1 milliseconds, and every later `*` id of the stream goes on from
 * there; a time past year 9999 (which no RFC 3339 timestamp can carry, and past year 275760 no Date at all) is
 * replaced by the time the entry is read. It used to be kept as an invalid Date, whose serialisation threw for the
 * whole batch, again and again, so that no event of the stream was delivered any more.
 */
function entryTime(entryId: string): Date {
  const ms = Number(entryId.split('-')[0]);
  return new Date(Number.isSafeInteger(ms) && ms >= 0 && ms <= LAST_RFC3339_MS ? ms : Date.now());
}

/**
 * An entry's fields as a JSON array of strings, cut at `max` UTF-8 bytes (with `…` when something was cut). Only
 * what can show within `max` bytes is decoded: the JSON of a whole field of a hundred MiB (a control byte takes six
 * characters there) is longer than any string V8 can hold, and building it failed the whole batch, again and
 * again, so that the consumer never got past that entry.
 */
function fieldsAsJson(fields: Buffer[] | null, max: number): string {
  if (!fields) return 'null';
  const kept: string[] = [];
  let bytes = 0;
  for (const field of fields) {
    if (bytes > max) break;
    // A field cut here (never inside a character) is longer than `max` in the JSON too: the cut below shows it.
    kept.push(
      field.length > max ? new StringDecoder('utf8').write(field.subarray(0, max + 1)) : field.toString(),
    );
    bytes += Math.min(field.length, max + 1) + 3;
  }
  return cutToBytes(JSON.stringify(kept), max);
}

/** `text` cut to at most `max` UTF-8 bytes (never inside a character), with `…` when something was cut. */
function cutToBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  // A decoder's write() holds back a character cut in two, which the cut then leaves out.
  return `${new StringDecoder('utf8').write(Buffer.from(text).subarray(0, max - 3))}…`;
}
