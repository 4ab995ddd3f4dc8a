/** The attempts of one project in this worker. */
interface ProjectAttempts {
  /** Start times of the attempts in flight, oldest first (a Set iterates in insertion order). */
  readonly running: Set<{ readonly startedAt: number }>;
  /** Until when the project counts as slow after an attempt that took long. */
  slowUntil: number;
}

/** Limits of {@link ProjectSlots}. */
export interface ProjectSlotsOptions {
  /** Attempts a slow project may have in flight at once. */
  share: number;
  /** An attempt in flight for longer than this makes its project slow. */
  slowAfterMs: number;
  /** How long a project stays slow after its last attempt that took longer than `slowAfterMs`. */
  slowForMs: number;
  /** Milliseconds of the service's clock. */
  now: () => number;
}

/**
 * Keeps a project whose receivers are slow from taking every delivery attempt slot of a worker. An attempt can
 * hold its slot for the whole attempt timeout (10 s) when the receiver does not answer: without a limit, one
 * project sending to a receiver that hangs would hold every slot, and every other project's deliveries would wait
 * behind its backlog for as long as it lasts.
 *
 * A project is slow while one of its attempts has been in flight for longer than `slowAfterMs`, and for
 * `slowForMs` after one that took that long. A slow project gets at most `share` attempts in flight; its next
 * ones wait (DeliveryProcessor puts them back for a moment) and other projects' attempts take the free slots.
 * Projects whose receivers answer are never limited, so one busy project on fast receivers keeps the worker's full
 * throughput. Counted per worker process, in memory: N worker replicas give a slow project up to N shares.
 */
export class ProjectSlots {
  private readonly projects = new Map<string, ProjectAttempts>();
  private nextSweep = 0;

  constructor(private readonly options: ProjectSlotsOptions) {}

  /** Takes a slot for an attempt of `projectId`; returns its release, or null when the project must wait. */
  take(projectId: string): (() => void) | null {
    const now = this.options.now();
    this.forgetIdle(now);
    let project = this.projects.get(projectId);
    if (project === undefined) {
      project = { running: new Set(), slowUntil: 0 };
      this.projects.set(projectId, project);
    } else if (project.running.size >= this.options.share && this.isSlow(project, now)) {
      return null;
    }
    const attempt = { startedAt: now };
    const running = project;
    running.running.add(attempt);
    return () => {
      if (!running.running.delete(attempt)) return;
      const end = this.options.now();
      if (end - attempt.startedAt > this.options.slowAfterMs)
        running.slowUntil = end + this.options.slowForMs;
      if (running.running.size === 0 && running.slowUntil <= end) this.projects.delete(projectId);
    };
  }

  /** Attempts of `projectId` in flight now. */
  held(projectId: string): number {
    return this.projects.get(projectId)?.running.size ?? 0;
  }

  /** Drops, at most once per `slowForMs`, the projects with nothing in flight that are no longer slow. */
  private forgetIdle(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.options.slowForMs;
    for (const [id, project] of this.projects) {
      if (project.running.size === 0 && project.slowUntil <= now) this.projects.delete(id);
    }
  }

  /** Projects this worker keeps track of (in flight, or slow lately). */
  get tracked(): number {
    return this.projects.size;
  }

  private isSlow(project: ProjectAttempts, now: number): boolean {
    if (project.slowUntil > now) return true;
    const oldest = project.running.values().next();
    return !oldest.done && now - oldest.value.startedAt > this.options.slowAfterMs;
  }
}
