import type { DeliveryLogQuery } from '@app/domain';
import type { DeliveryEntity } from '@app/persistence';
import { rfc3339Instant } from '@app/validation';
import type { DeliveryLogEntryResponse } from './dto/event.response';
import type { ListEventsQuery } from './dto/list-events.query';

/** The validated query strings as the domain takes them. */
export function toDeliveryLogQuery(q: ListEventsQuery): DeliveryLogQuery {
  return {
    limit: q.limit === undefined ? 25 : Number(q.limit),
    // Past 2^53 - 1 no page has rows, and the number would lose digits: the largest exact one stands in.
    offset: q.offset === undefined ? 0 : Math.min(Number(q.offset), Number.MAX_SAFE_INTEGER),
    status: q.status,
    eventType: q.event_type,
    since: timestamp(q.since, 'ceil'),
    until: timestamp(q.until, 'floor'),
  };
}

/** A validated timestamp as an instant: the lower bound rounds up below the millisecond, the upper down. */
function timestamp(value: string | undefined, round: 'floor' | 'ceil'): Date | undefined {
  return value === undefined ? undefined : rfc3339Instant(value, round);
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
