import { Injectable, Optional } from '@nestjs/common';
import type { NewAuditEvent, Repositories } from '@app/persistence';
import {
  AUDIT_EVENT_VERSION,
  type Actor,
  type AuditDataMap,
  type AuditEvent,
  type AuditEventType,
} from './audit-event.types';
import { AuditRelaySignal } from './audit-relay.signal';
import { ulidGenerator } from './ulid';

const newUlid = ulidGenerator();

/** What a caller says about a change; the recorder adds the id, version and timestamp format. */
export interface AuditInput<T extends AuditEventType> {
  type: T;
  projectId: string;
  webhookId: string | null;
  actor: Actor;
  requestId: string | null;
  occurredAt: Date;
  data: AuditDataMap[T];
}

/** Builds the versioned envelope of an audit event. */
export function buildAuditEvent<T extends AuditEventType>(input: AuditInput<T>): AuditEvent<T> {
  return {
    id: `aud_${newUlid(input.occurredAt.getTime())}`,
    version: AUDIT_EVENT_VERSION,
    type: input.type,
    occurred_at: input.occurredAt.toISOString(),
    project_id: input.projectId,
    webhook_id: input.webhookId,
    actor: input.actor,
    request_id: input.requestId,
    data: input.data,
  };
}

/**
 * Writes audit events into the outbox through the caller's transaction, so a change and its audit event
 * commit together or not at all. The relay publishes them to the Redis stream afterwards, woken right after
 * the commit (never before it: a rolled-back change must not wake anything, and the relay could not see it).
 */
@Injectable()
export class AuditRecorder {
  constructor(@Optional() private readonly signal?: AuditRelaySignal) {}

  async record<T extends AuditEventType>(tx: Repositories, input: AuditInput<T>): Promise<AuditEvent<T>> {
    const row = this.rowOf(input);
    await tx.auditEvents.append([row]);
    // After the row is written: outside a transaction (repositories on the pool) the wake-up goes at once, and
    // sent before the insert it would find nothing, leaving the event to the relay's poll.
    this.wakeRelayAfterCommit(tx);
    return row.event as unknown as AuditEvent<T>;
  }

  /**
   * The outbox row of an event, for a caller that writes it itself within a larger statement of the same
   * transaction (the hot paths fold it into one round trip). Wakes the relay after the commit, like
   * {@link record}.
   */
  prepare<T extends AuditEventType>(tx: Repositories, input: AuditInput<T>): NewAuditEvent {
    this.wakeRelayAfterCommit(tx);
    return this.rowOf(input);
  }

  private wakeRelayAfterCommit(tx: Repositories): void {
    const signal = this.signal;
    if (signal) tx.afterCommit(() => signal.nudge());
  }

  /**
   * The outbox row of an event, for a caller that commits it in a single statement of its own; that caller
   * calls {@link committed} once the statement has succeeded.
   */
  rowOf<T extends AuditEventType>(input: AuditInput<T>): NewAuditEvent {
    const event = buildAuditEvent(input);
    return {
      id: event.id,
      projectId: event.project_id,
      webhookId: event.webhook_id,
      type: event.type,
      occurredAt: input.occurredAt,
      event: event as unknown as Record<string, unknown>,
    };
  }

  /** Wakes the relay for events committed outside a transaction (see {@link rowOf}). */
  committed(): void {
    this.signal?.nudge();
  }

  /** Like {@link record} for many events in one statement (set-based work such as a rotation sweep batch). */
  async recordMany<T extends AuditEventType>(
    tx: Repositories,
    inputs: AuditInput<T>[],
  ): Promise<AuditEvent<T>[]> {
    const events = inputs.map((input) => buildAuditEvent(input));
    await tx.auditEvents.appendMany(
      events.map((event, i) => ({
        id: event.id,
        projectId: event.project_id,
        webhookId: event.webhook_id,
        type: event.type,
        occurredAt: inputs[i].occurredAt,
        event: event as unknown as Record<string, unknown>,
      })),
    );
    const signal = this.signal;
    if (signal && events.length > 0) tx.afterCommit(() => signal.nudge());
    return events;
  }
}
