import { signatureHeader } from './signature.signer';

/** Names of the headers every delivery carries, spelled as on the wire. */
export const DeliveryHeader = {
  ContentType: 'Content-Type',
  UserAgent: 'User-Agent',
  Event: 'Anchor-Event',
  DeliveryId: 'Anchor-Delivery-Id',
  Timestamp: 'Anchor-Timestamp',
  Signature: 'Anchor-Signature',
} as const;

/** One of the header names in {@link DeliveryHeader}. */
export type DeliveryHeaderName = (typeof DeliveryHeader)[keyof typeof DeliveryHeader];

/** The `User-Agent` of every delivery; receivers may filter on it, so it only changes with the wire format. */
export const DELIVERY_USER_AGENT = 'Anchor-Webhooks/1.0';

/** Input of {@link deliveryHeaders}. */
export interface DeliveryHeadersInput {
  /** Event type from the catalog, e.g. `task.completed`. */
  eventType: string;
  /** Delivery id, identical across retries so receivers can de-duplicate. */
  deliveryId: string;
  /** Unix seconds of this attempt; goes into both `Anchor-Timestamp` and `t=`. */
  timestamp: number;
  /** The exact body that will be sent. */
  body: string | Buffer;
  /** Valid secrets, newest first. */
  secrets: readonly string[];
}

/** The complete header record of one delivery attempt. */
export function deliveryHeaders(input: DeliveryHeadersInput): Record<DeliveryHeaderName, string> {
  const signature = signatureHeader({ secrets: input.secrets, timestamp: input.timestamp, body: input.body });
  return {
    [DeliveryHeader.ContentType]: 'application/json',
    [DeliveryHeader.UserAgent]: DELIVERY_USER_AGENT,
    [DeliveryHeader.Event]: input.eventType,
    [DeliveryHeader.DeliveryId]: input.deliveryId,
    [DeliveryHeader.Timestamp]: String(input.timestamp),
    [DeliveryHeader.Signature]: signature,
  };
}
