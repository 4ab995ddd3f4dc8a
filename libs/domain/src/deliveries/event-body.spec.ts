import { createHash } from 'node:crypto';
import { isPrefixedUlid } from '../ids';
import {
  eventIdForPublisherId,
  eventIdFromStreamEntry,
  serializeEventBody,
  testEventContent,
} from './event-body';

describe('eventIdFromStreamEntry', () => {
  it('is an evt_ ULID whose time part is the entry time, and the same for the same entry', () => {
    const id = eventIdFromStreamEntry('webhooks:events', '1795343894015-3');
    expect(isPrefixedUlid(id, 'evt_')).toBe(true);
    expect(eventIdFromStreamEntry('webhooks:events', '1795343894015-3')).toBe(id);
    // Crockford base32 of the milliseconds, most significant first.
    let ms = 0;
    for (const c of id.slice(4, 14)) ms = ms * 32 + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c);
    expect(ms).toBe(1795343894015);
  });

  it('differs between entries and between streams', () => {
    const ids = new Set<string>();
    for (let seq = 0; seq < 1000; seq++) ids.add(eventIdFromStreamEntry('s', `1795343894015-${seq}`));
    expect(ids.size).toBe(1000);
    expect(eventIdFromStreamEntry('a', '1-0')).not.toBe(eventIdFromStreamEntry('b', '1-0'));
  });
});

describe('eventIdForPublisherId', () => {
  it('keeps an evt_ ULID, upper-cased', () => {
    expect(eventIdForPublisherId('evt_01JD4W1B6T0Q8H3X2Z5N7M9K4P')).toBe('evt_01JD4W1B6T0Q8H3X2Z5N7M9K4P');
    expect(eventIdForPublisherId('evt_01jd4w1b6t0q8h3x2z5n7m9k4p')).toBe('evt_01JD4W1B6T0Q8H3X2Z5N7M9K4P');
    expect(eventIdForPublisherId('evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ')).toBe('evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ');
  });

  it.each([
    ['another form', 'billing:run-42/attempt.1'],
    ['a ULID without the prefix', '01JD4W1B6T0Q8H3X2Z5N7M9K4P'],
    ['evt_ and a ULID out of range', 'evt_8ZZZZZZZZZZZZZZZZZZZZZZZZZ'],
    ['evt_ and a character outside Crockford base32', 'evt_01JD4W1B6T0Q8H3X2Z5N7M9K4U'],
    ['evt_ and one character too many', 'evt_01JD4W1B6T0Q8H3X2Z5N7M9K4PA'],
    ['one character', 'x'],
  ])('maps %s to an evt_ ULID of its own, the same every time', (_, id) => {
    const mapped = eventIdForPublisherId(id);
    expect(isPrefixedUlid(mapped, 'evt_')).toBe(true);
    expect(mapped[4] <= '7').toBe(true);
    expect(mapped).not.toBe(id);
    expect(eventIdForPublisherId(id)).toBe(mapped);
  });

  it('maps different ids to different events, and follows a fixed recipe', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) ids.add(eventIdForPublisherId(`run-${i}`));
    expect(ids.size).toBe(1000);
    // Pinned, so that a publisher can compute it and a release cannot change it unnoticed.
    expect(eventIdForPublisherId('billing:run-42')).toBe('evt_53YE0135CD0ECVRPNK73VY961F');
    const digest = createHash('sha256').update('publisher-event-id:billing:run-42').digest();
    let bits = 0n;
    for (const byte of digest.subarray(0, 16)) bits = (bits << 8n) | BigInt(byte);
    const expected = bits.toString(2).padStart(130, '0').match(/.{5}/g)!;
    expect(eventIdForPublisherId('billing:run-42')).toBe(
      `evt_${expected.map((b) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[parseInt(b, 2)]).join('')}`,
    );
  });
});

describe('serializeEventBody', () => {
  it('writes the contract fields in a fixed order', () => {
    const body = serializeEventBody({
      data: { x: 1 },
      text: null,
      project_id: 'p',
      created: '2026-11-22T09:00:00.000Z',
      type: 'task.completed',
      id: 'evt_1',
    });
    expect(body).toBe(
      '{"id":"evt_1","type":"task.completed","created":"2026-11-22T09:00:00.000Z","project_id":"p","text":null,"data":{"x":1}}',
    );
  });
});

describe('testEventContent', () => {
  it('marks the event as a test', () => {
    expect(testEventContent('session.recording.ready', 'wh_1')).toMatchObject({
      text: expect.stringContaining('session.recording.ready'),
      data: { test: true, webhook_id: 'wh_1', session_id: expect.any(String) },
    });
  });
});
