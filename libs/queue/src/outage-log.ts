/** A different reason later in the same spell is said again, but no more often than this. */
export const REASON_CHANGE_EVERY_MS = 60_000;

/**
 * What an ioredis client refuses a command with while its connection is down (offline queue off): a consequence
 * of the outage, not its reason: named as what happened when it is the first error of a spell, else not said.
 */
const REFUSED_WHILE_DOWN = /enableOfflineQueue/;

/**
 * Decides which of a client's connection errors are worth a log line: the first of a spell without the server,
 * then a different reason at most once a minute, never the same reason twice in one spell. A reconnecting client
 * reports an error per attempt, and its messages alternate (`write EPIPE`, then the refusal of the commands it
 * sends on connecting), so comparing each with the last one alone would log every attempt of a long outage.
 */
export class OutageLog {
  private spell: { said: Set<string>; lastSaidAt: number } | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** The line to log for this error, or null to stay quiet. */
  failed(e: Error): string | null {
    const refused = REFUSED_WHILE_DOWN.test(e.message);
    const reason = refused ? 'the connection was closed' : e.message;
    const now = this.now();
    if (this.spell === null) {
      this.spell = { said: new Set([reason]), lastSaidAt: now };
      return reason;
    }
    // A refused command adds nothing to a spell already said.
    if (refused || this.spell.said.has(reason) || now - this.spell.lastSaidAt < REASON_CHANGE_EVERY_MS) {
      return null;
    }
    this.spell.said.add(reason);
    this.spell.lastSaidAt = now;
    return reason;
  }

  /** The server answers again: true when that ends a spell (worth saying), and the next error starts a new one. */
  recovered(): boolean {
    const ended = this.spell !== null;
    this.spell = null;
    return ended;
  }
}
