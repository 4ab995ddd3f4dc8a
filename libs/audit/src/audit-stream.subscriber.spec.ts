import { EventEmitter } from 'node:events';
import type Redis from 'ioredis';
import {
  compareStreamIds,
  previousStreamId,
  AuditStreamSubscriber,
  RecentIds,
  decodeEntry,
  entriesOfReadReply,
  parseAutoClaimReply,
} from './audit-stream.subscriber';
import type { AuditEvent } from './audit-event.types';

const event = (id: string): AuditEvent =>
  ({ id, version: 1, type: 'webhook.deleted', data: { secrets_destroyed: 1 } }) as unknown as AuditEvent;
const fields = (e: AuditEvent): string[] => ['type', e.type, 'project_id', 'p', 'event', JSON.stringify(e)];

describe('reply parsing', () => {
  it('reads the entries of an XREADGROUP reply, and nothing from a timeout', () => {
    expect(entriesOfReadReply(null)).toEqual([]);
    expect(entriesOfReadReply([['s', [['1-0', ['event', '{}']]]]])).toEqual([['1-0', ['event', '{}']]]);
  });

  it('reads the cursor and entries of an XAUTOCLAIM reply (Redis 6.2 and 7 shapes)', () => {
    expect(parseAutoClaimReply(['0-0', [['1-0', ['a', 'b']]]])).toEqual({
      cursor: '0-0',
      entries: [['1-0', ['a', 'b']]],
      deleted: [],
    });
    expect(parseAutoClaimReply(['5-0', [], ['3-0']])).toEqual({
      cursor: '5-0',
      entries: [],
      deleted: ['3-0'],
    });
    expect(parseAutoClaimReply(null)).toEqual({ cursor: '0-0', entries: [], deleted: [] });
  });

  it('decodes the event field; trimmed or malformed entries carry no event', () => {
    const e = event('aud_1');
    expect(decodeEntry(['1-0', fields(e)])).toEqual({ entryId: '1-0', event: e, reclaimed: false });
    expect(decodeEntry(['1-0', null], true)).toEqual({ entryId: '1-0', event: null, reclaimed: true });
    expect(decodeEntry(['1-0', ['event', 'not json']]).event).toBeNull();
    expect(decodeEntry(['1-0', ['event', '{"no":"id"}']]).event).toBeNull();
    expect(decodeEntry(['1-0', ['type', 'x']]).event).toBeNull();
  });
});

describe('compareStreamIds', () => {
  it('orders by time, then sequence, beyond the safe integers', () => {
    expect(compareStreamIds('7-0', '1700000000000-0')).toBe(-1);
    expect(compareStreamIds('5-10', '5-9')).toBe(1);
    expect(compareStreamIds('5-1', '5-1')).toBe(0);
    expect(compareStreamIds('18446744073709551615-1', '18446744073709551615-0')).toBe(1);
  });
});

describe('previousStreamId', () => {
  it('steps back one sequence number, or to the end of the millisecond before', () => {
    expect(previousStreamId('5-3')).toBe('5-2');
    expect(previousStreamId('5-0')).toBe('4-18446744073709551615');
    expect(previousStreamId('0-0')).toBe('0-0');
    expect(compareStreamIds(previousStreamId('1700000000000-0'), '1700000000000-0')).toBe(-1);
  });
});

describe('RecentIds', () => {
  it('forgets the oldest id beyond its capacity', () => {
    const ids = new RecentIds(2);
    ids.add('a');
    ids.add('b');
    ids.add('a');
    ids.add('c');
    expect([ids.has('a'), ids.has('b'), ids.has('c')]).toEqual([false, true, true]);
  });

  it('remembers nothing with capacity 0', () => {
    const ids = new RecentIds(0);
    ids.add('a');
    expect(ids.has('a')).toBe(false);
  });
});

describe('AuditStreamSubscriber', () => {
  // A fake connection: answers XREADGROUP '>' with the queued entries once, and records XACKs. An event emitter,
  // as a connection is (run() listens for its reconnections).
  function fakeRedis(entries: [string, string[] | null][]) {
    const acked: string[] = [];
    const calls: unknown[][] = [];
    const redis = Object.assign(new EventEmitter(), {
      call: jest.fn(async (...args: unknown[]) => {
        calls.push(args);
        switch (args[0]) {
          case 'XREADGROUP':
            return args[args.length - 1] === '>' && entries.length ? [['s', entries.splice(0)]] : null;
          case 'XACK':
            acked.push(...args.slice(3).map(String));
            return 1;
          default:
            return 'OK';
        }
      }),
    });
    return { redis: redis as unknown as Redis, acked, calls };
  }

  it('acknowledges only after the handler succeeds', async () => {
    const { redis, acked } = fakeRedis([
      ['1-0', fields(event('aud_1'))],
      ['2-0', fields(event('aud_2'))],
    ]);
    const errors: unknown[] = [];
    const sub = new AuditStreamSubscriber(redis, {
      stream: 's',
      group: 'g',
      consumer: 'c',
      onError: (e) => errors.push(e),
    });
    const handled: string[] = [];
    await sub.readNew((e) => {
      if (e.id === 'aud_2') throw new Error('boom');
      handled.push(e.id);
    });
    expect(handled).toEqual(['aud_1']);
    expect(acked).toEqual(['1-0']);
    expect(errors).toHaveLength(1);
  });

  it('skips and acknowledges a republished event it has already handled', async () => {
    const { redis, acked, calls } = fakeRedis([
      ['1-0', fields(event('aud_1'))],
      ['2-0', fields(event('aud_1'))],
      ['3-0', null],
    ]);
    const sub = new AuditStreamSubscriber(redis, { stream: 's', group: 'g', consumer: 'c' });
    const handled: string[] = [];
    await sub.readNew((e) => void handled.push(e.id));
    expect(handled).toEqual(['aud_1']);
    expect(acked).toEqual(['1-0', '2-0', '3-0']);
    // In one XACK for the read, after the handler: one round trip, not one per entry.
    expect(calls.filter(([command]) => command === 'XACK')).toEqual([
      ['XACK', 's', 'g', '1-0', '2-0', '3-0'],
    ]);
  });

  it('treats an existing group as success and creates the stream with the group', async () => {
    const redis = {
      call: jest.fn(async () => {
        throw new Error('BUSYGROUP Consumer Group name already exists');
      }),
    } as unknown as Redis;
    const sub = new AuditStreamSubscriber(redis, { stream: 's', group: 'g', consumer: 'c', startId: '0' });
    await expect(sub.ensureGroup()).resolves.toBeUndefined();
    expect((redis.call as jest.Mock).mock.calls[0]).toEqual(['XGROUP', 'CREATE', 's', 'g', '0', 'MKSTREAM']);
  });

  it('run() survives a Redis failure: it reports it, backs off, recreates the group and goes on', async () => {
    const { redis, acked } = fakeRedis([['1-0', fields(event('aud_1'))]]);
    const call = redis.call as unknown as jest.Mock;
    const real = call.getMockImplementation()!;
    let failed = false;
    call.mockImplementation(async (...args: unknown[]) => {
      if (args[0] === 'XGROUP' && !failed) {
        failed = true;
        throw new Error('Connection is closed.');
      }
      return real(...args);
    });
    const errors: unknown[] = [];
    const sub = new AuditStreamSubscriber(redis, {
      stream: 's',
      group: 'g',
      consumer: 'c',
      blockMs: 10,
      onError: (e) => errors.push(e),
    });
    await sub.run((e) => {
      expect(e.id).toBe('aud_1');
      sub.stop();
    });
    expect(errors).toEqual([new Error('Connection is closed.')]);
    expect(acked).toEqual(['1-0']);
    expect(call.mock.calls.filter((c: unknown[]) => c[0] === 'XGROUP')).toHaveLength(2);
  });

  /**
   * Runs a subscriber (group `g`, starting at `$`) whose new-entry reads are answered by `read(n)` (n from 1; an
   * Error is thrown, `undefined` stops the run) and whose XINFO GROUPS answers `groups`. Returns the start ids of
   * the groups it created, the events it handled and the entries it acknowledged.
   */
  async function scripted(
    groups: unknown[][] | Error,
    read: (n: number) => unknown,
    handler: (e: AuditEvent) => void = () => undefined,
    replies: Record<string, unknown> = {},
  ) {
    const { redis, acked } = fakeRedis([]);
    const call = redis.call as unknown as jest.Mock;
    const real = call.getMockImplementation()!;
    let reads = 0;
    const sub = new AuditStreamSubscriber(redis, {
      stream: 's',
      group: 'g',
      consumer: 'c',
      startId: '$',
      blockMs: 10,
      onError: () => undefined,
    });
    call.mockImplementation(async (...args: unknown[]) => {
      if (args[0] === 'XINFO') {
        if (groups instanceof Error) throw groups;
        return groups;
      }
      if (typeof args[0] === 'string' && args[0] in replies) return replies[args[0]];
      if (args[0] === 'XREADGROUP' && args[args.length - 1] === '>') {
        const answer = read(++reads);
        if (answer instanceof Error) throw answer;
        if (answer === undefined) sub.stop();
        return answer ?? null;
      }
      return real(...args);
    });
    const handled: string[] = [];
    await sub.run((e) => {
      handler(e);
      handled.push(e.id);
    });
    const creates = call.mock.calls.filter((c: unknown[]) => c[0] === 'XGROUP').map((c: unknown[]) => c[4]);
    return { creates, handled, acked };
  }
  const nogroup = new Error("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option");

  it('re-creates a group that disappeared after the last entry it read, or where the group stood', async () => {
    // Reads: 1 → entry 7-0; 2 → NOGROUP (Redis restarted empty); 3 → an entry that arrived during the outage;
    // 4 → NOGROUP again, before anything else was read. The group stood after 4-0 when the subscriber started.
    const entries: Record<number, unknown> = {
      1: [['s', [['7-0', fields(event('aud_before'))]]]],
      2: nogroup,
      3: [['s', [['1700000000000-0', fields(event('aud_outage'))]]]],
      4: nogroup,
    };
    const run = await scripted(
      [['name', 'g', 'consumers', 0, 'pending', 0, 'last-delivered-id', '4-0']],
      (n) => entries[n],
    );
    // Not from `0` (a whole surviving stream again) nor from `$` (the outage's entries skipped).
    expect(run.creates).toEqual(['$', '7-0', '1700000000000-0']);
    expect(run.handled).toEqual(['aud_before', 'aud_outage']);
    expect(run.acked).toEqual(['7-0', '1700000000000-0']);
  });

  it('re-creates the group before an entry whose handler failed, so it is read again', async () => {
    // 7-0 fails (left pending), 8-0 is handled, then the group is gone: it comes back just before 7-0.
    const entries: Record<number, unknown> = {
      1: [['s', [['7-0', fields(event('aud_fails'))]]]],
      2: [['s', [['8-0', fields(event('aud_ok'))]]]],
      3: nogroup,
    };
    const run = await scripted(
      [['name', 'g', 'pending', 0, 'last-delivered-id', '4-0']],
      (n) => entries[n],
      (e) => {
        if (e.id === 'aud_fails') throw new Error('store down');
      },
    );
    expect(run.creates).toEqual(['$', '6-18446744073709551615']);
    expect(run.acked).toEqual(['8-0']);
  });

  it('starts, when other consumers hold pending entries, before the oldest of them, and from 0 when XINFO fails', async () => {
    const pending = await scripted(
      [['name', 'g', 'pending', 2, 'last-delivered-id', '9-0']],
      (n) => (n === 1 ? nogroup : undefined),
      undefined,
      { XPENDING: [2, '5-1', '9-0', [['other', '2']]] },
    );
    expect(pending.creates).toEqual(['$', '5-0']);
    const denied = await scripted(
      new Error('NOPERM this user has no permissions to run the xinfo command'),
      (n) => (n === 1 ? nogroup : undefined),
    );
    expect(denied.creates).toEqual(['$', '0']);
  });

  it('starts over after where the group stood when nothing was read yet', async () => {
    const run = await scripted(
      [
        ['name', 'other', 'last-delivered-id', '9-0'],
        ['name', 'g', 'last-delivered-id', '4-0'],
      ],
      (n) => (n === 1 ? nogroup : undefined),
    );
    expect(run.creates).toEqual(['$', '4-0']);
  });
});
