import { ProjectSlots, type AttemptSlot } from './project.slots';

describe('ProjectSlots', () => {
  let now = 0;
  const slots = (limitedTotal = 100) =>
    new ProjectSlots({ share: 2, limitedTotal, slowAfterMs: 1000, slowForMs: 60_000, now: () => now });
  /** Project `x` of receiver (webhook) `x1`, `x2`…: the project is the receiver's first letter. */
  const take = (s: ProjectSlots, receiver: string) => s.take(receiver[0], receiver);
  const granted = (slot: AttemptSlot | string): AttemptSlot => {
    if (typeof slot === 'string') throw new Error(`no slot: ${slot}`);
    return slot;
  };
  const sendingSlot = (s: ProjectSlots, receiver: string): AttemptSlot => {
    const slot = granted(take(s, receiver));
    slot.sending();
    return slot;
  };
  /** `times` requests to the receiver end quickly, one after the other: it is proven for a minute. */
  const prove = (s: ProjectSlots, receiver: string, times = 1) => {
    for (let i = 0; i < times; i++) {
      const slot = sendingSlot(s, receiver);
      now += 10;
      slot.release();
    }
  };
  beforeEach(() => {
    now = 1_000_000;
  });

  it('lets a proven receiver have as many attempts in flight as it answered lately, and more as it answers', () => {
    const s = slots();
    prove(s, 'a1', 10);
    const held = Array.from({ length: 10 }, () => sendingSlot(s, 'a1'));
    expect(s.held('a')).toBe(10);
    expect(take(s, 'a1')).toBe('ramping');
    // They answer within slowAfterMs: twenty answers in this period now, so twenty in flight.
    now += 900;
    for (const slot of held) slot.release();
    const more = Array.from({ length: 20 }, () => sendingSlot(s, 'a1'));
    expect(take(s, 'a1')).toBe('ramping');
    // The next period still counts the answers of this one; the one after that, only its own.
    now += 1000;
    expect(take(s, 'a1')).toBe('ramping');
    for (const slot of more) slot.release(); // slow now: they took more than slowAfterMs
    now += 60_000;
    expect(typeof take(s, 'a1')).toBe('object');
  });

  it('holds a proven receiver that answered a few requests and then hangs to the share until it is seen to be slow', () => {
    const s = slots();
    prove(s, 'a1');
    sendingSlot(s, 'a1');
    sendingSlot(s, 'a1');
    // One answer lately: the share (2) is what it may have in flight, not every slot.
    expect(take(s, 'a1')).toBe('ramping');
    // Not counted among the limited attempts: another project's new receiver is not held back by it.
    sendingSlot(s, 'b1');
    sendingSlot(s, 'b1');
    now += 1001;
    expect(take(s, 'a1')).toBe('slow');
  });

  it('holds attempts to a receiver none of whose requests has ended yet to the share, so a first burst cannot take every slot', () => {
    const s = slots();
    const first = [sendingSlot(s, 'a1'), sendingSlot(s, 'a1')];
    // Nothing is known about a1 yet: its third attempt waits, briefly.
    expect(take(s, 'a1')).toBe('unproven');
    expect(s.held('a')).toBe(2);
    // Its first request ends quickly: a1 is proven, and takes more as it answers.
    now += 50;
    first[0].release();
    expect(typeof take(s, 'a1')).toBe('object');
    expect(take(s, 'a1')).toBe('ramping');
    expect(s.held('a')).toBe(2);
    // A request that ended while the attempt went on (the outcome being recorded) proves it too.
    const b = sendingSlot(s, 'b1');
    now += 10;
    b.sent();
    expect(typeof take(s, 'b1')).toBe('object');
  });

  it('judges each receiver by its own requests: a new webhook of a proven project is limited', () => {
    const s = slots();
    prove(s, 'a1');
    sendingSlot(s, 'a2');
    sendingSlot(s, 'a2');
    expect(take(s, 'a2')).toBe('unproven');
    expect(typeof take(s, 'a1')).toBe('object');
  });

  it('forgets that a receiver was proven a minute after its last quick request', () => {
    const s = slots();
    prove(s, 'a1');
    expect(s.tracked).toBe(1);
    now += 60_001;
    sendingSlot(s, 'a1');
    sendingSlot(s, 'a1');
    expect(take(s, 'a1')).toBe('unproven');
  });

  it('lets a project with nothing in flight to unproven receivers start one such attempt even when the limited share is full', () => {
    const s = slots(4);
    // Two projects hold 4 attempts to unproven receivers, limitedTotal: neither starts another...
    for (const receiver of ['a1', 'b1']) {
      sendingSlot(s, receiver);
      sendingSlot(s, receiver);
    }
    expect(take(s, 'a1')).toBe('unproven');
    expect(take(s, 'a2')).toBe('unproven');
    // ...but a third project may start one, to prove a receiver, and only one, to any of its unproven receivers.
    const probe = sendingSlot(s, 'c1');
    expect(take(s, 'c1')).toBe('unproven');
    expect(take(s, 'c2')).toBe('unproven');
    now += 20;
    probe.release();
    // It answered quickly: c1 is proven and takes what it needs, and c2 may have its probe now.
    expect([take(s, 'c1'), take(s, 'c1'), take(s, 'c1')]).not.toContain('unproven');
    sendingSlot(s, 'c2');
    // An attempt to a slow receiver gets no such exception.
    const slow = sendingSlot(s, 'd1');
    now += 1001;
    slow.release();
    expect(take(s, 'd1')).toBe('slow');
  });

  it("limits attempts to a receiver while one of its requests has run too long, and only that receiver's", () => {
    const s = slots();
    prove(s, 'a1', 3);
    prove(s, 'a2');
    prove(s, 'b1');
    const first = sendingSlot(s, 'a1');
    const second = sendingSlot(s, 'a1');
    sendingSlot(s, 'a1');
    now += 1001;
    expect(take(s, 'a1')).toBe('slow');
    // The same project's webhook that answers, and another project, are not held back.
    expect(typeof take(s, 'a2')).toBe('object');
    expect(typeof take(s, 'b1')).toBe('object');
    // Below the share again, a slow receiver may have attempts started.
    first.release();
    expect(take(s, 'a1')).toBe('slow');
    second.release();
    sendingSlot(s, 'a1');
    expect(take(s, 'a1')).toBe('slow');
  });

  it("counts a project's attempts to all its slow and unproven receivers against one share", () => {
    const s = slots();
    prove(s, 'a1');
    sendingSlot(s, 'a1');
    now += 1001; // a1 is slow, with one attempt in flight
    sendingSlot(s, 'a2'); // a2 is unproven: its probe
    expect(take(s, 'a1')).toBe('slow');
    expect(take(s, 'a3')).toBe('unproven');
  });

  it('holds all attempts to slow and unproven receivers together to limitedTotal, so proven receivers keep the rest', () => {
    const s = slots(4);
    prove(s, 'c1', 3);
    for (const receiver of ['a1', 'b1']) {
      sendingSlot(s, receiver);
      sendingSlot(s, receiver);
    }
    now += 1001;
    // a1 and b1 are slow now, with 4 attempts in flight: neither gets another.
    expect(take(s, 'b1')).toBe('slow');
    expect(take(s, 'a1')).toBe('slow');
    // A proven receiver whose requests have not run long is not counted and not limited (its proof, a minute
    // long, still holds).
    const fine = [sendingSlot(s, 'c1'), sendingSlot(s, 'c1'), sendingSlot(s, 'c1')];
    expect(s.held('c')).toBe(3);
    for (const slot of fine) slot.release();
    // c1's requests take long too: it is slow, and the limited attempts are at limitedTotal already.
    const late = sendingSlot(s, 'c1');
    now += 1001;
    expect(take(s, 'c1')).toBe('slow');
    late.release();
    expect(take(s, 'c1')).toBe('slow');
  });

  it('lets a slow receiver have attempts started again once the limited attempts are fewer than limitedTotal', () => {
    const s = slots(3);
    prove(s, 'a1');
    prove(s, 'b1');
    const a = [sendingSlot(s, 'a1'), sendingSlot(s, 'a1')];
    const b = sendingSlot(s, 'b1');
    now += 1001;
    expect(take(s, 'b1')).toBe('slow'); // 3 in flight to slow receivers
    a[0].release();
    expect(typeof take(s, 'b1')).toBe('object');
    b.release();
  });

  it('counts only the request to the receiver, not the steps around it', () => {
    const s = slots();
    prove(s, 'a1');
    const slot = granted(take(s, 'a1')); // claiming, signing: not sending yet
    now += 5000;
    // Its proof is a minute old at most, and no request runs long: not limited.
    expect(typeof take(s, 'a1')).toBe('object');
    slot.sending();
    now += 10;
    slot.sent();
    now += 5000; // recording the outcome takes long: still not slow
    slot.release();
    expect(typeof take(s, 'a1')).toBe('object');
  });

  it('keeps a receiver slow for a while after a long request, even when its other requests end quickly', () => {
    const s = slots();
    const long = sendingSlot(s, 'a1');
    now += 5000;
    long.sent();
    long.release();
    expect(s.held('a')).toBe(0);
    const quick = [sendingSlot(s, 'a1'), sendingSlot(s, 'a1')];
    expect(take(s, 'a1')).toBe('slow'); // slow for a minute after the long one
    now += 10;
    for (const slot of quick) slot.release();
    now += 60_001;
    // A minute later it is neither slow nor proven: it gets the share again, and is proven by a quick request.
    const again = [sendingSlot(s, 'a1'), sendingSlot(s, 'a1')];
    expect(take(s, 'a1')).toBe('unproven');
    now += 10;
    again[0].release();
    expect([take(s, 'a1'), take(s, 'a1'), take(s, 'a1')]).not.toContain('unproven');
  });

  it('frees a slot once however often its release is called, and forgets idle receivers', () => {
    const s = slots();
    const slot = granted(take(s, 'a1')); // never sent: proves nothing
    slot.release();
    slot.release();
    expect(s.held('a')).toBe(0);
    expect(s.tracked).toBe(0);
    const slow = sendingSlot(s, 'b1');
    now += 2000;
    slow.release();
    expect(s.tracked).toBe(1); // slow for a minute
    prove(s, 'c1');
    expect(s.tracked).toBe(2); // c1 is proven for a minute
    now += 60_001;
    take(s, 'd1');
    expect(s.tracked).toBe(1); // only d1
  });
});
