/** One attempt holding a slot. */
interface Attempt {
  /** When its request to the receiver started, or null before that. */
  sendingSince: number | null;
}

/** The attempts to one receiver (a webhook) in this worker, and what its requests showed lately. */
interface Receiver {
  readonly projectId: string;
  readonly running: Set<Attempt>;
  /** Until when the receiver counts as slow after a request that took long. */
  slowUntil: number;
  /** Until when the receiver counts as proven after a request that ended quickly. */
  provenUntil: number;
  /** Requests that ended quickly, counted by period of `slowAfterMs`: in `period`, and in the one before it. */
  answered: { period: number; current: number; previous: number };
}

const NONE: ReadonlySet<Receiver> = new Set();

/** A slot held by an attempt. */
export interface AttemptSlot {
  /** The request to the receiver starts now: only its time can make the receiver slow, or prove it. */
  sending(): void;
  /** The request to the receiver is over: answered and its response body read (or dropped), or failed. */
  sent(): void;
  /** The attempt is over (idempotent). */
  release(): void;
}

/**
 * Why an attempt gets no slot now: its receiver is `slow`, or `unproven` (none of its requests ended quickly
 * lately), and its project holds its share of such attempts already, or all projects together do; or its
 * receiver, proven, is `ramping`: it has as many attempts in flight as it answered lately. An unproven receiver
 * is proven, or slow, within `slowAfterMs` of its first request, and a ramping one answers or turns slow as
 * quickly, so their attempts need to wait only briefly; a slow one's for longer.
 */
export type SlotRefusal = 'slow' | 'unproven' | 'ramping';

/** Limits of {@link ProjectSlots}. */
export interface ProjectSlotsOptions {
  /** Attempts to slow or unproven receivers one project may have in flight at once. */
  share: number;
  /**
   * Attempts to slow or unproven receivers all projects together may have in flight at once, so that the rest of
   * the worker's slots stay for receivers that answer, however many are slow or new. One attempt per project to an
   * unproven receiver may go beyond both limits, so that the receiver can prove itself.
   */
  limitedTotal: number;
  /** A request to a receiver taking longer than this makes it slow; one ending sooner proves it. */
  slowAfterMs: number;
  /** How long a receiver stays slow, or proven, after its last request that made it so. */
  slowForMs: number;
  /** A monotonic clock in milliseconds (wall-clock steps must not make receivers slow). */
  now: () => number;
}

/**
 * Keeps receivers that are slow from taking every delivery attempt slot of a worker. An attempt can hold its slot
 * for the whole attempt timeout (10 s) when the receiver does not answer: without a limit, one project sending to
 * a receiver that hangs would hold every slot, and every other project's deliveries would wait behind its backlog
 * for as long as it lasts.
 *
 * Each receiver (a webhook; a project, for jobs queued before jobs named their webhook) is judged by its own
 * requests, timed from start to end (not the Postgres and Redis steps around them, so a slow database does not
 * make receivers slow). A request ends once its response body is read or dropped, not at its status: a receiver
 * that answers at once and then trickles its body keeps a connection, and the slot, as long as one that answers
 * late. It is slow while one of its requests has been going for longer than `slowAfterMs`, and
 * for `slowForMs` after one that took that long; proven for `slowForMs` after one ended sooner (unless slow); and
 * unproven otherwise: new, or quiet for a while.
 *
 * Attempts to a slow or unproven receiver are limited: at most `share` of them in flight per project, and
 * `limitedTotal` for all projects together; the next ones wait (DeliveryProcessor puts them back for a while) and
 * the free slots go to other attempts. Limiting unproven receivers too bounds a burst that starts before any of
 * its requests could be seen taking long: without it, a new webhook's burst to a receiver that hangs took every
 * slot within that first second, and everything else waited for those attempts to time out. A project with no
 * attempt in flight to an unproven receiver may always start one, so a new or quiet webhook is never starved while
 * the limited share is full, and it is unlimited as soon as its first request ends.
 *
 * Attempts to a proven receiver are limited only by what it has shown it takes: as many in flight as it answered
 * in the last one to two periods of `slowAfterMs`, or `share` if that is more. A receiver whose requests end within
 * `slowAfterMs` never has more attempts in flight than that (its rate times its latency), so the limit does not
 * bind on a steady load, and it grows as fast as the receiver answers on a burst; but a receiver that answered a
 * few requests and then hangs cannot take more than `share` slots in the second before it is seen to be slow. One
 * busy project on fast receivers keeps the worker's full throughput, and a project's webhook that answers is not
 * held back by another of its webhooks that hangs.
 * Counted per worker process, in memory: N worker replicas give a project up to N shares.
 */
export class ProjectSlots {
  private readonly receivers = new Map<string, Receiver>();
  /**
   * The receivers with attempts in flight, all and by project (only projects with some): at most one per slot,
   * so counting over them stays cheap.
   */
  private readonly active = new Set<Receiver>();
  private readonly activeByProject = new Map<string, Set<Receiver>>();
  private nextSweep = 0;

  constructor(private readonly options: ProjectSlotsOptions) {}

  /**
   * Takes a slot for an attempt of `projectId` to the receiver `receiverId` (its webhook), or says why the attempt
   * must wait.
   */
  take(projectId: string, receiverId: string): AttemptSlot | SlotRefusal {
    const now = this.options.now();
    this.forgetIdle(now);
    let receiver = this.receivers.get(receiverId);
    if (receiver === undefined) {
      receiver = {
        projectId,
        running: new Set(),
        slowUntil: 0,
        provenUntil: 0,
        answered: { period: 0, current: 0, previous: 0 },
      };
      this.receivers.set(receiverId, receiver);
    }
    const limit = this.limitOf(receiver, now);
    if (limit !== null) {
      const project = this.activeByProject.get(projectId) ?? NONE;
      const probing = limit === 'unproven' && !this.probingIn(project, now);
      if (
        !probing &&
        (this.limitedInFlight(project, now) >= this.options.share ||
          this.limitedInFlight(this.active, now) >= this.options.limitedTotal)
      )
        return limit;
    } else if (receiver.running.size >= Math.max(this.options.share, this.answeredLately(receiver, now))) {
      return 'ramping';
    }
    return this.hold(receiverId, receiver);
  }

  /** Attempts of `projectId` in flight now. */
  held(projectId: string): number {
    let total = 0;
    for (const receiver of this.activeByProject.get(projectId) ?? NONE) total += receiver.running.size;
    return total;
  }

  /** Receivers this worker keeps track of (in flight, or slow or proven lately). */
  get tracked(): number {
    return this.receivers.size;
  }

  private hold(receiverId: string, receiver: Receiver): AttemptSlot {
    const attempt: Attempt = { sendingSince: null };
    receiver.running.add(attempt);
    this.active.add(receiver);
    const project = this.activeByProject.get(receiver.projectId);
    if (project === undefined) this.activeByProject.set(receiver.projectId, new Set([receiver]));
    else project.add(receiver);
    const sent = () => {
      if (attempt.sendingSince === null) return;
      const end = this.options.now();
      if (end - attempt.sendingSince > this.options.slowAfterMs) {
        receiver.slowUntil = end + this.options.slowForMs;
      } else {
        receiver.provenUntil = end + this.options.slowForMs;
        this.countAnswered(receiver, end);
      }
      attempt.sendingSince = null;
    };
    return {
      sending: () => {
        attempt.sendingSince = this.options.now();
      },
      sent,
      release: () => {
        if (!receiver.running.has(attempt)) return;
        sent();
        receiver.running.delete(attempt);
        if (receiver.running.size > 0) return;
        this.active.delete(receiver);
        const project = this.activeByProject.get(receiver.projectId);
        project?.delete(receiver);
        if (project?.size === 0) this.activeByProject.delete(receiver.projectId);
        if (this.forgettable(receiver, this.options.now())) this.receivers.delete(receiverId);
      },
    };
  }

  /** Drops, at most once per `slowForMs`, the receivers with nothing in flight that are no longer slow or proven. */
  private forgetIdle(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.options.slowForMs;
    for (const [id, receiver] of this.receivers) {
      if (this.forgettable(receiver, now)) this.receivers.delete(id);
    }
  }

  private forgettable(receiver: Receiver, now: number): boolean {
    return receiver.running.size === 0 && receiver.slowUntil <= now && receiver.provenUntil <= now;
  }

  /** Whether one of a project's receivers in flight is unproven (its one probe). */
  private probingIn(project: ReadonlySet<Receiver>, now: number): boolean {
    for (const receiver of project) if (this.limitOf(receiver, now) === 'unproven') return true;
    return false;
  }

  /** Attempts in flight to slow or unproven receivers among `receivers`. */
  private limitedInFlight(receivers: ReadonlySet<Receiver>, now: number): number {
    let total = 0;
    for (const receiver of receivers) {
      if (this.limitOf(receiver, now) !== null) total += receiver.running.size;
    }
    return total;
  }

  /** Requests to the receiver that ended quickly in the last one to two periods of `slowAfterMs`. */
  private answeredLately(receiver: Receiver, now: number): number {
    const period = Math.floor(now / this.options.slowAfterMs);
    const { answered } = receiver;
    if (period === answered.period) return answered.current + answered.previous;
    return period === answered.period + 1 ? answered.current : 0;
  }

  private countAnswered(receiver: Receiver, now: number): void {
    const period = Math.floor(now / this.options.slowAfterMs);
    const { answered } = receiver;
    if (period !== answered.period) {
      answered.previous = period === answered.period + 1 ? answered.current : 0;
      answered.current = 0;
      answered.period = period;
    }
    answered.current++;
  }

  /** Why attempts to the receiver are limited, or null when they are not. */
  private limitOf(receiver: Receiver, now: number): SlotRefusal | null {
    if (this.isSlow(receiver, now)) return 'slow';
    return receiver.provenUntil > now ? null : 'unproven';
  }

  private isSlow(receiver: Receiver, now: number): boolean {
    if (receiver.slowUntil > now) return true;
    for (const attempt of receiver.running) {
      if (attempt.sendingSince !== null && now - attempt.sendingSince > this.options.slowAfterMs) return true;
    }
    return false;
  }
}
