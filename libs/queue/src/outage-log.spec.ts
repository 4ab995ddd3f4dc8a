import { OutageLog, REASON_CHANGE_EVERY_MS } from './outage-log';

describe('OutageLog', () => {
  let now: number;
  let log: OutageLog;
  beforeEach(() => {
    now = 1_000_000;
    log = new OutageLog(() => now);
  });
  const refused = new Error("Stream isn't writeable and enableOfflineQueue options is false");

  it('says the first error of a spell, and not the alternating errors of the attempts that follow', () => {
    expect(log.failed(new Error('write EPIPE'))).toBe('write EPIPE');
    for (let i = 0; i < 50; i++) {
      now += 5000;
      expect(log.failed(refused)).toBeNull();
      expect(log.failed(new Error('write EPIPE'))).toBeNull();
    }
  });

  it('names a refused command as a closed connection, not as the offline queue', () => {
    expect(log.failed(refused)).toBe('the connection was closed');
  });

  it('says a new reason once, and no sooner than a minute after the last line', () => {
    log.failed(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    now += REASON_CHANGE_EVERY_MS - 1;
    expect(log.failed(new Error('NOAUTH Authentication required.'))).toBeNull();
    now += 1;
    expect(log.failed(new Error('NOAUTH Authentication required.'))).toBe('NOAUTH Authentication required.');
    now += 10 * REASON_CHANGE_EVERY_MS;
    expect(log.failed(new Error('connect ECONNREFUSED 127.0.0.1:6379'))).toBeNull();
    expect(log.failed(new Error('NOAUTH Authentication required.'))).toBeNull();
  });

  it('ends the spell when the server answers: the next error is said again', () => {
    expect(log.recovered()).toBe(false);
    log.failed(new Error('write EPIPE'));
    expect(log.recovered()).toBe(true);
    expect(log.recovered()).toBe(false);
    expect(log.failed(new Error('write EPIPE'))).toBe('write EPIPE');
  });
});
