/** One attempt holding a slot. */
interface Attempt {
  /** When its request to the receiver started, or null before that. */
  sendingSince: number | null;
}

/** The attempts of one project in this worker. */
interface ProjectAttempts {
  readonly running: Set<Attempt>;
  /** Until when the project counts as slow after a request that took long. */
  slowUntil: number;
  /** Until when the project counts as proven after a request that ended quickly. */
  provenUntil: number;
}

/** A slot held by an attempt. */
export interface AttemptSlot {
  /** The request to the receiver starts now: only its time can make the project slow, or prove it. */
  sending(): void;
  /** The request to the receiver is over. */
  sent(): void;
  /** The attempt is over (idempotent). */
  release(): void;
}

/**
 * Why a project's attempt gets no slot now: its receivers are `slow`, or it is `unproven` (none of its requests
 * ended quickly lately) and holds its share already. An unproven project proves itself, or turns slow, within
 * `slowAfterMs` of its first request, so its attempts need to wait only briefly; a slow one's for longer.
 */
export type SlotRefusal = 'slow' | 'unproven';

/** Limits of {@link ProjectSlots}. */
export interface ProjectSlotsOptions {
  /** Attempts a slow or unproven project may have in flight at once. */
  share: number;
  /**
   * Attempts all slow and unproven projects together may have in flight at once, so that the rest of the worker's
   * slots stay for projects whose receivers answer, however many projects are slow or new. An unproven project
   * with nothing in flight may always start one attempt beyond it, so that it can prove itself.
   */
  limitedTotal: number;
  /** A request to a receiver taking longer than this makes its project slow; one ending sooner proves it. */
  slowAfterMs: number;
  /** How long a project stays slow, or proven, after its last request that made it so. */
  slowForMs: number;
  /** A monotonic clock in milliseconds (wall-clock steps must not make projects slow). */
  now: () => number;
}

/**
 * Keeps a project whose receivers are slow from taking every delivery attempt slot of a worker. An attempt can
 * hold its slot for the whole attempt timeout (10 s) when the receiver does not answer: without a limit, one
 * project sending to a receiver that hangs would hold every slot, and every other project's deliveries would wait
 * behind its backlog for as long as it lasts.
 *
 * A project is slow while one of its requests to a receiver has been going for longer than `slowAfterMs`, and for
 * `slowForMs` after one that took that long. It is proven for `slowForMs` after one of its requests ended within
 * `slowAfterMs` (and while it is not slow), and unproven otherwise: new, or idle for a while. Only the request
 * counts, not the Postgres and Redis steps around it, so a slow database does not make every project slow.
 *
 * A slow or unproven project gets at most `share` attempts in flight, and all of them together at most
 * `limitedTotal`; their next ones wait (DeliveryProcessor puts them back for a while) and other projects' attempts
 * take the free slots. Limiting unproven projects too bounds a burst that starts before any of its requests could
 * be seen taking long: without it, a new project's burst to a receiver that hangs took every slot within that
 * first second, and everything else waited for those attempts to time out. An unproven project with nothing in
 * flight may always start one attempt, so a new or quiet project is never starved while the limited share is
 * full, and one whose receivers answer is unlimited as soon as its first request ends.
 *
 * Proven projects are never limited, so one busy project on fast receivers keeps the worker's full throughput.
 * Counted per worker process, in memory: N worker replicas give a slow project up to N shares.
 */
export class ProjectSlots {
  private readonly projects = new Map<string, ProjectAttempts>();
  /** The projects with attempts in flight: at most one per slot, so counting over them stays cheap. */
  private readonly active = new Set<ProjectAttempts>();
  private nextSweep = 0;

  constructor(private readonly options: ProjectSlotsOptions) {}

  /** Takes a slot for an attempt of `projectId`, or says why the project must wait. */
  take(projectId: string): AttemptSlot | SlotRefusal {
    const now = this.options.now();
    this.forgetIdle(now);
    let project = this.projects.get(projectId);
    if (project === undefined) {
      project = { running: new Set(), slowUntil: 0, provenUntil: 0 };
      this.projects.set(projectId, project);
    }
    const limit = this.limitOf(project, now);
    if (limit !== null) {
      const probing = limit === 'unproven' && project.running.size === 0;
      if (
        !probing &&
        (project.running.size >= this.options.share || this.limitedInFlight(now) >= this.options.limitedTotal)
      )
        return limit;
    }
    const owner = project;
    const attempt: Attempt = { sendingSince: null };
    owner.running.add(attempt);
    this.active.add(owner);
    const sent = () => {
      if (attempt.sendingSince === null) return;
      const end = this.options.now();
      if (end - attempt.sendingSince > this.options.slowAfterMs)
        owner.slowUntil = end + this.options.slowForMs;
      else owner.provenUntil = end + this.options.slowForMs;
      attempt.sendingSince = null;
    };
    return {
      sending: () => {
        attempt.sendingSince = this.options.now();
      },
      sent,
      release: () => {
        if (!owner.running.has(attempt)) return;
        sent();
        owner.running.delete(attempt);
        if (owner.running.size > 0) return;
        this.active.delete(owner);
        if (this.forgettable(owner, this.options.now())) this.projects.delete(projectId);
      },
    };
  }

  /** Attempts of `projectId` in flight now. */
  held(projectId: string): number {
    return this.projects.get(projectId)?.running.size ?? 0;
  }

  /** Projects this worker keeps track of (in flight, or slow or proven lately). */
  get tracked(): number {
    return this.projects.size;
  }

  /** Drops, at most once per `slowForMs`, the projects with nothing in flight that are no longer slow or proven. */
  private forgetIdle(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.options.slowForMs;
    for (const [id, project] of this.projects) {
      if (this.forgettable(project, now)) this.projects.delete(id);
    }
  }

  private forgettable(project: ProjectAttempts, now: number): boolean {
    return project.running.size === 0 && project.slowUntil <= now && project.provenUntil <= now;
  }

  /** Attempts of slow and unproven projects in flight now (looked at only when such a project asks for a slot). */
  private limitedInFlight(now: number): number {
    let total = 0;
    for (const project of this.active) {
      if (this.limitOf(project, now) !== null) total += project.running.size;
    }
    return total;
  }

  /** Why the project is limited, or null when it is not. */
  private limitOf(project: ProjectAttempts, now: number): SlotRefusal | null {
    if (this.isSlow(project, now)) return 'slow';
    return project.provenUntil > now ? null : 'unproven';
  }

  private isSlow(project: ProjectAttempts, now: number): boolean {
    if (project.slowUntil > now) return true;
    for (const attempt of project.running) {
      if (attempt.sendingSince !== null && now - attempt.sendingSince > this.options.slowAfterMs) return true;
    }
    return false;
  }
}
