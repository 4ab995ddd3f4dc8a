/** The time source of every time-dependent rule. Tests inject a controllable one instead of sleeping. */
export abstract class Clock {
  abstract now(): Date;
}

/** The wall clock. */
export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}

/** A clock that moves only when told to; for tests and simulations. */
export class ManualClock extends Clock {
  private t: number;
  constructor(start: Date | number = Date.now()) {
    super();
    this.t = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  set(at: Date | number): void {
    this.t = typeof at === 'number' ? at : at.getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
