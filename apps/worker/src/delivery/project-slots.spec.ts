import { ProjectSlots, type AttemptSlot } from './project-slots';

describe('ProjectSlots', () => {
  let now = 0;
  const slots = (limitedTotal = 100) =>
    new ProjectSlots({ share: 2, limitedTotal, slowAfterMs: 1000, slowForMs: 60_000, now: () => now });
  const granted = (slot: AttemptSlot | string): AttemptSlot => {
    if (typeof slot === 'string') throw new Error(`no slot: ${slot}`);
    return slot;
  };
  const sendingSlot = (s: ProjectSlots, project: string): AttemptSlot => {
    const slot = granted(s.take(project));
    slot.sending();
    return slot;
  };
  /** One request of the project ends quickly: it is proven for a minute. */
  const prove = (s: ProjectSlots, project: string) => {
    const slot = sendingSlot(s, project);
    now += 10;
    slot.release();
  };
  beforeEach(() => {
    now = 1_000_000;
  });

  it('never limits a project whose requests finish quickly', () => {
    const s = slots();
    prove(s, 'a');
    const held = Array.from({ length: 10 }, () => sendingSlot(s, 'a'));
    expect(s.held('a')).toBe(10);
    now += 1000; // not more than slowAfterMs
    expect(s.take('a')).toMatchObject({ release: expect.any(Function) });
    for (const slot of held) slot.release();
    expect(s.take('a')).toMatchObject({ release: expect.any(Function) });
  });

  it('holds a project none of whose requests has ended yet to its share, so a first burst cannot take every slot', () => {
    const s = slots();
    const first = [sendingSlot(s, 'a'), sendingSlot(s, 'a')];
    // Nothing is known about a's receivers yet: its third attempt waits, briefly.
    expect(s.take('a')).toBe('unproven');
    expect(s.held('a')).toBe(2);
    // Its first request ends quickly: a is proven, and no longer limited.
    now += 50;
    first[0].release();
    expect([s.take('a'), s.take('a'), s.take('a')]).not.toContain('unproven');
    expect(s.held('a')).toBe(4);
    // A request that ended while the attempt went on (the outcome being recorded) proves it too.
    const b = sendingSlot(s, 'b');
    now += 10;
    b.sent();
    expect(typeof s.take('b')).toBe('object');
  });

  it('forgets that a project was proven a minute after its last quick request', () => {
    const s = slots();
    prove(s, 'a');
    expect(s.tracked).toBe(1);
    now += 60_001;
    sendingSlot(s, 'a');
    sendingSlot(s, 'a');
    expect(s.take('a')).toBe('unproven');
  });

  it('lets an unproven project with nothing in flight start one attempt even when the limited share is full', () => {
    const s = slots(4);
    // Two unproven projects hold 4 attempts, limitedTotal: none of them starts another...
    for (const project of ['a', 'b']) {
      sendingSlot(s, project);
      sendingSlot(s, project);
    }
    expect(s.take('a')).toBe('unproven');
    // ...but a third project may start one, to prove itself, and only one.
    const probe = sendingSlot(s, 'c');
    expect(s.take('c')).toBe('unproven');
    now += 20;
    probe.release();
    // It answered quickly: c is proven and takes what it needs.
    expect([s.take('c'), s.take('c'), s.take('c')]).not.toContain('unproven');
    // A slow project with nothing in flight gets no such exception.
    const slow = sendingSlot(s, 'd');
    now += 1001;
    slow.release();
    expect(s.take('d')).toBe('slow');
  });

  it('limits a project to its share while one of its requests has run too long, and only that project', () => {
    const s = slots();
    prove(s, 'a');
    prove(s, 'b');
    const first = sendingSlot(s, 'a');
    const second = sendingSlot(s, 'a');
    sendingSlot(s, 'a');
    now += 1001;
    expect(s.take('a')).toBe('slow');
    expect(typeof s.take('b')).toBe('object');
    // Below its share again, a slow project may start attempts.
    first.release();
    expect(s.take('a')).toBe('slow');
    second.release();
    sendingSlot(s, 'a');
    expect(s.held('a')).toBe(2);
    expect(s.take('a')).toBe('slow');
  });

  it('holds all slow and unproven projects together to limitedTotal attempts, so proven projects keep the rest', () => {
    const s = slots(4);
    prove(s, 'c');
    for (const project of ['a', 'b']) {
      sendingSlot(s, project);
      sendingSlot(s, project);
    }
    now += 1001;
    // a and b are slow now, with 4 attempts in flight: neither starts another.
    expect(s.take('b')).toBe('slow');
    expect(s.take('a')).toBe('slow');
    // A proven project whose requests have not run long is not counted and not limited (its proof, a minute
    // long, still holds).
    const fine = [sendingSlot(s, 'c'), sendingSlot(s, 'c'), sendingSlot(s, 'c')];
    expect(s.held('c')).toBe(3);
    for (const slot of fine) slot.release();
    // c's requests take long too: it is slow, and the limited projects hold limitedTotal already.
    const late = sendingSlot(s, 'c');
    now += 1001;
    expect(s.take('c')).toBe('slow');
    late.release();
    expect(s.take('c')).toBe('slow');
  });

  it('lets a slow project start attempts again once the limited projects hold fewer than limitedTotal', () => {
    const s = slots(3);
    prove(s, 'a');
    prove(s, 'b');
    const a = [sendingSlot(s, 'a'), sendingSlot(s, 'a')];
    const b = sendingSlot(s, 'b');
    now += 1001;
    expect(s.take('b')).toBe('slow'); // 3 in flight for the slow projects
    a[0].release();
    expect(typeof s.take('b')).toBe('object');
    b.release();
  });

  it('counts only the request to the receiver, not the steps around it', () => {
    const s = slots();
    prove(s, 'a');
    const slot = granted(s.take('a')); // claiming, signing: not sending yet
    s.take('a');
    s.take('a');
    now += 5000;
    // Its proof is a minute old at most, and no request runs long: not limited.
    expect(typeof s.take('a')).toBe('object');
    slot.sending();
    now += 10;
    slot.sent();
    now += 5000; // recording the outcome takes long: still not slow
    slot.release();
    expect(typeof s.take('a')).toBe('object');
  });

  it('keeps a project slow for a while after a long request, even when its other requests end quickly', () => {
    const s = slots();
    const long = sendingSlot(s, 'a');
    now += 5000;
    long.sent();
    long.release();
    expect(s.held('a')).toBe(0);
    const quick = [sendingSlot(s, 'a'), sendingSlot(s, 'a')];
    expect(s.take('a')).toBe('slow'); // slow for a minute after the long one
    now += 10;
    for (const slot of quick) slot.release();
    now += 60_001;
    // A minute later it is neither slow nor proven: it starts its share again, and is proven by a quick request.
    const again = [sendingSlot(s, 'a'), sendingSlot(s, 'a')];
    expect(s.take('a')).toBe('unproven');
    now += 10;
    again[0].release();
    expect([s.take('a'), s.take('a'), s.take('a')]).not.toContain('unproven');
  });

  it('frees a slot once however often its release is called, and forgets idle projects', () => {
    const s = slots();
    const slot = granted(s.take('a')); // never sent: proves nothing
    slot.release();
    slot.release();
    expect(s.held('a')).toBe(0);
    expect(s.tracked).toBe(0);
    const slow = sendingSlot(s, 'b');
    now += 2000;
    slow.release();
    expect(s.tracked).toBe(1); // slow for a minute
    prove(s, 'c');
    expect(s.tracked).toBe(2); // c is proven for a minute
    now += 60_001;
    s.take('d');
    expect(s.tracked).toBe(1); // only d
  });
});
