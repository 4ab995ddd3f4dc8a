import type { DeliveryLogQuery } from '@app/domain';
import { ValidationFailedError } from '@app/domain';
import type { DeliveryEntity } from '@app/persistence';
import type { DeliveryLogEntryResponse } from './dto/event.response';
import type { ListEventsQuery } from './dto/list-events.query';

/** The validated query strings as the domain takes them. */
export function toDeliveryLogQuery(q: ListEventsQuery): DeliveryLogQuery {
  return {
    limit: q.limit === undefined ? 25 : Number(q.limit),
    offset: q.offset === undefined ? 0 : Number(q.offset),
    status: q.status,
    eventType: q.event_type,
    since: timestamp('since', q.since),
    until: timestamp('until', q.until),
  };
}

function timestamp(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(value);
  // The format was checked already; this catches what only looks like a date (month 13, hour 25).
  if (Number.isNaN(at.getTime())) {
    const message = `${field} is not a valid date`;
    throw new ValidationFailedError(message, [{ field, rule: 'matches', message }]);
  }
  return at;
}

/** One row of the delivery log as the API shows it. */
export function presentDelivery(d: DeliveryEntity, includePayload: boolean): DeliveryLogEntryResponse {
  return {
    id: d.id,
    external_event_id: d.externalEventId,
    event_type: d.eventType,
    status: d.status,
    attempt: d.attempt,
    response_status: d.responseStatus,
    error_message: d.errorMessage,
    scheduled_at: d.scheduledAt.toISOString(),
    completed_at: d.completedAt?.toISOString() ?? null,
    ...(includePayload && { payload: JSON.parse(d.payload) as unknown }),
  };
}
