import { ProjectSlots } from './project-slots';

describe('ProjectSlots', () => {
  let now = 0;
  const slots = () => new ProjectSlots({ share: 2, slowAfterMs: 1000, slowForMs: 60_000, now: () => now });
  beforeEach(() => {
    now = 1_000_000;
  });

  it('never limits a project whose attempts finish quickly', () => {
    const s = slots();
    const releases = Array.from({ length: 10 }, () => s.take('a'));
    expect(releases.every((r) => r !== null)).toBe(true);
    expect(s.held('a')).toBe(10);
    now += 1000; // not more than slowAfterMs
    expect(s.take('a')).not.toBeNull();
  });

  it('limits a project to its share while one of its attempts has run too long, and only that project', () => {
    const s = slots();
    const first = s.take('a');
    s.take('a');
    s.take('a');
    now += 1001;
    expect(s.take('a')).toBeNull();
    expect(s.take('b')).not.toBeNull();
    // Below its share again, a slow project may start attempts.
    first?.();
    s.take('a');
    expect(s.held('a')).toBe(2);
    expect(s.take('a')).toBeNull();
  });

  it('keeps a project slow for a while after a long attempt, then forgets it', () => {
    const s = slots();
    const release = s.take('a');
    now += 5000;
    release?.();
    expect(s.held('a')).toBe(0);
    const quick = [s.take('a'), s.take('a')];
    expect(s.take('a')).toBeNull(); // slow for a minute after the long one
    for (const r of quick) r?.();
    now += 60_001;
    expect([s.take('a'), s.take('a'), s.take('a')]).not.toContain(null);
  });

  it('frees a slot once however often its release is called, and forgets idle projects', () => {
    const s = slots();
    const release = s.take('a');
    release?.();
    release?.();
    expect(s.held('a')).toBe(0);
    expect(s.tracked).toBe(0);
    const slow = s.take('b');
    now += 2000;
    slow?.();
    expect(s.tracked).toBe(1); // slow for a minute
    now += 60_001;
    s.take('c');
    expect(s.tracked).toBe(1); // only c
  });
});
