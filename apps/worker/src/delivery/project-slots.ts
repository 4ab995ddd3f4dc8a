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
}

/** A slot held by an attempt. */
export interface AttemptSlot {
  /** The request to the receiver starts now: only its time can make the project slow. */
  sending(): void;
  /** The request to the receiver is over. */
  sent(): void;
  /** The attempt is over (idempotent). */
  release(): void;
}

/** Limits of {@link ProjectSlots}. */
export interface ProjectSlotsOptions {
  /** Attempts a slow project may have in flight at once. */
  share: number;
  /**
   * Attempts all slow projects together may have in flight at once, so that the rest of the worker's slots stay
   * for projects whose receivers answer, however many projects are slow.
   */
  slowTotal: number;
  /** A request to a receiver taking longer than this makes its project slow. */
  slowAfterMs: number;
  /** How long a project stays slow after its last request that took longer than `slowAfterMs`. */
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
 * `slowForMs` after one that took that long. Only the request counts, not the Postgres and Redis steps around it,
 * so a slow database does not make every project slow. A slow project gets at most `share` attempts in flight, and
 * all slow projects together at most `slowTotal`; their next ones wait (DeliveryProcessor puts them back for a
 * while) and other projects' attempts take the free slots.
 * Projects whose receivers answer are never limited, so one busy project on fast receivers keeps the worker's full
 * throughput. Counted per worker process, in memory: N worker replicas give a slow project up to N shares.
 */
export class ProjectSlots {
  private readonly projects = new Map<string, ProjectAttempts>();
  private nextSweep = 0;

  constructor(private readonly options: ProjectSlotsOptions) {}

  /** Takes a slot for an attempt of `projectId`, or returns null when the project must wait. */
  take(projectId: string): AttemptSlot | null {
    const now = this.options.now();
    this.forgetIdle(now);
    let project = this.projects.get(projectId);
    if (project === undefined) {
      project = { running: new Set(), slowUntil: 0 };
      this.projects.set(projectId, project);
    } else if (
      this.isSlow(project, now) &&
      (project.running.size >= this.options.share || this.slowInFlight(now) >= this.options.slowTotal)
    ) {
      return null;
    }
    const owner = project;
    const attempt: Attempt = { sendingSince: null };
    owner.running.add(attempt);
    const sent = () => {
      if (attempt.sendingSince === null) return;
      const end = this.options.now();
      if (end - attempt.sendingSince > this.options.slowAfterMs)
        owner.slowUntil = end + this.options.slowForMs;
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
        if (owner.running.size === 0 && owner.slowUntil <= this.options.now())
          this.projects.delete(projectId);
      },
    };
  }

  /** Attempts of `projectId` in flight now. */
  held(projectId: string): number {
    return this.projects.get(projectId)?.running.size ?? 0;
  }

  /** Projects this worker keeps track of (in flight, or slow lately). */
  get tracked(): number {
    return this.projects.size;
  }

  /** Drops, at most once per `slowForMs`, the projects with nothing in flight that are no longer slow. */
  private forgetIdle(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.options.slowForMs;
    for (const [id, project] of this.projects) {
      if (project.running.size === 0 && project.slowUntil <= now) this.projects.delete(id);
    }
  }

  /** Attempts of slow projects in flight now (looked at only when a slow project asks for a slot). */
  private slowInFlight(now: number): number {
    let total = 0;
    for (const project of this.projects.values()) {
      if (project.running.size > 0 && this.isSlow(project, now)) total += project.running.size;
    }
    return total;
  }

  private isSlow(project: ProjectAttempts, now: number): boolean {
    if (project.slowUntil > now) return true;
    for (const attempt of project.running) {
      if (attempt.sendingSince !== null && now - attempt.sendingSince > this.options.slowAfterMs) return true;
    }
    return false;
  }
}
