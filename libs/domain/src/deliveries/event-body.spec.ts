import { isPrefixedUlid } from '../ids';
import { eventIdFromStreamEntry, serializeEventBody, testEventContent } from './event-body';

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
