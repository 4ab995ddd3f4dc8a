import { ProjectSlots, type AttemptSlot } from './project-slots';

describe('ProjectSlots', () => {
  let now = 0;
  const slots = (slowTotal = 100) =>
    new ProjectSlots({ share: 2, slowTotal, slowAfterMs: 1000, slowForMs: 60_000, now: () => now });
  const sendingSlot = (s: ProjectSlots, project: string): AttemptSlot => {
    const slot = s.take(project);
    if (slot === null) throw new Error('no slot');
    slot.sending();
    return slot;
  };
  beforeEach(() => {
    now = 1_000_000;
  });

  it('never limits a project whose requests finish quickly', () => {
    const s = slots();
    const held = Array.from({ length: 10 }, () => sendingSlot(s, 'a'));
    expect(s.held('a')).toBe(10);
    now += 1000; // not more than slowAfterMs
    expect(s.take('a')).not.toBeNull();
    for (const slot of held) slot.release();
    expect(s.take('a')).not.toBeNull();
  });

  it('limits a project to its share while one of its requests has run too long, and only that project', () => {
    const s = slots();
    const first = sendingSlot(s, 'a');
    const second = sendingSlot(s, 'a');
    sendingSlot(s, 'a');
    now += 1001;
    expect(s.take('a')).toBeNull();
    expect(s.take('b')).not.toBeNull();
    // Below its share again, a slow project may start attempts.
    first.release();
    expect(s.take('a')).toBeNull();
    second.release();
    sendingSlot(s, 'a');
    expect(s.held('a')).toBe(2);
    expect(s.take('a')).toBeNull();
  });

  it('holds all slow projects together to slowTotal attempts, so the other projects keep the rest', () => {
    const s = slots(3);
    for (const project of ['a', 'b']) {
      sendingSlot(s, project);
      sendingSlot(s, project);
    }
    now += 1001;
    // a and b are slow now, with 4 attempts in flight: neither starts another.
    expect(s.take('b')).toBeNull();
    expect(s.take('a')).toBeNull();
    // A third project whose requests have not run long is not counted and not limited.
    const fine = [sendingSlot(s, 'c'), sendingSlot(s, 'c'), sendingSlot(s, 'c')];
    expect(s.held('c')).toBe(3);
    for (const slot of fine) slot.release();
    // c's requests take long too: it is slow, and the slow projects hold more than slowTotal already.
    const late = sendingSlot(s, 'c');
    now += 1001;
    expect(s.take('c')).toBeNull();
    late.release();
    expect(s.take('c')).toBeNull();
  });

  it('lets a slow project start attempts again once the slow projects hold fewer than slowTotal', () => {
    const s = slots(3);
    const a = [sendingSlot(s, 'a'), sendingSlot(s, 'a')];
    const b = sendingSlot(s, 'b');
    now += 1001;
    expect(s.take('b')).toBeNull(); // 3 in flight for the slow projects
    a[0].release();
    expect(s.take('b')).not.toBeNull();
    b.release();
  });

  it('counts only the request to the receiver, not the steps around it', () => {
    const s = slots();
    const slot = s.take('a'); // claiming, signing: not sending yet
    s.take('a');
    s.take('a');
    now += 5000;
    expect(s.take('a')).not.toBeNull();
    slot?.sending();
    now += 10;
    slot?.sent();
    now += 5000; // recording the outcome takes long: still not slow
    slot?.release();
    expect(s.take('a')).not.toBeNull();
  });

  it('keeps a project slow for a while after a long request, then forgets it', () => {
    const s = slots();
    const long = sendingSlot(s, 'a');
    now += 5000;
    long.sent();
    long.release();
    expect(s.held('a')).toBe(0);
    const quick = [sendingSlot(s, 'a'), sendingSlot(s, 'a')];
    expect(s.take('a')).toBeNull(); // slow for a minute after the long one
    for (const slot of quick) slot.release();
    now += 60_001;
    expect([s.take('a'), s.take('a'), s.take('a')]).not.toContain(null);
  });

  it('frees a slot once however often its release is called, and forgets idle projects', () => {
    const s = slots();
    const slot = sendingSlot(s, 'a');
    slot.release();
    slot.release();
    expect(s.held('a')).toBe(0);
    expect(s.tracked).toBe(0);
    const slow = sendingSlot(s, 'b');
    now += 2000;
    slow.release();
    expect(s.tracked).toBe(1); // slow for a minute
    now += 60_001;
    s.take('c');
    expect(s.tracked).toBe(1); // only c
  });
});
