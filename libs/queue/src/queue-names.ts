/**
 * BullMQ queue names. Frozen once released: a renamed queue strands the jobs already waiting in Redis under
 * the old name, so a new name means a new queue and a migration plan, never an edit here.
 */
export enum QueueName {
  Rotation = 'rotation',
  Audit = 'audit',
  Delivery = 'delivery',
  Housekeeping = 'housekeeping',
}

/**
 * Key prefix of every queue. The braces are a Redis Cluster hash tag: all of a queue's keys land in one slot,
 * which BullMQ's multi-key scripts require on a cluster.
 */
export const QUEUE_PREFIX = '{webhooks}';

/** Job names: dotted verbs, one per kind of work. */
export const JobName = {
  RotationSweep: 'rotation.sweep',
  SecretRotate: 'secret.rotate',
  AuditRelay: 'audit.relay',
  DeliveryAttempt: 'delivery.attempt',
  SecretsExpire: 'secrets.expire',
  DeliveriesPurge: 'deliveries.purge',
  AuditPurge: 'audit.purge',
} as const;

/** Any job name. */
export type JobName = (typeof JobName)[keyof typeof JobName];

/**
 * Payload of each job. Ids and timestamps only: never a secret, never an API key, never a URL's query.
 */
export interface JobPayloads {
  [JobName.RotationSweep]: Record<string, never>;
  [JobName.SecretRotate]: { webhookId: string; dueAt: string };
  [JobName.AuditRelay]: Record<string, never>;
  // `projectId` and `webhookId`: for fairness between projects in the worker; jobs queued before they were added
  // lack them (before 2026-11-30, only the webhook).
  [JobName.DeliveryAttempt]: { deliveryId: string; projectId?: string; webhookId?: string };
  [JobName.SecretsExpire]: Record<string, never>;
  [JobName.DeliveriesPurge]: Record<string, never>;
  [JobName.AuditPurge]: Record<string, never>;
}

/**
 * Job id of the targeted rotation of one webhook at one due time. Deterministic, so queueing the same rotation
 * twice adds nothing while the first job exists; no `:` (BullMQ refuses it in custom ids).
 */
export function secretRotateJobId(webhookId: string, dueAt: Date): string {
  return `rotate-${webhookId}-${dueAt.getTime()}`;
}
