import { Queue } from 'bullmq';
import { JobName, QUEUE_PREFIX, QueueName, secretRotateJobId, type JobPayloads } from './queue-names';
import { closeQueue, queueReady } from './queue-connection';
import { bullConnection, disconnectClusterClients, type RedisTarget } from './redis-connection';

/** How long {@link queueSecretRotation} waits for Redis before it reports it unavailable. */
const CONNECT_WAIT_MS = 5000;

/**
 * Queues the targeted rotation of one webhook at its pending due time (job `secret.rotate` on the `rotation`
 * queue), for an operator who wants one overdue rotation re-run now rather than at the next sweep. The worker
 * rotates only if that exact due time is still pending, so a duplicate, a retry or a sweep that got there first
 * makes it a no-op. Returns the job id. For one-off callers (the CLI): opens and closes its own connection.
 */
export async function queueSecretRotation(
  redis: RedisTarget,
  webhookId: string,
  dueAt: Date,
): Promise<string> {
  const connection = bullConnection(redis, { enableOfflineQueue: false });
  const queue = new Queue(QueueName.Rotation, {
    connection,
    prefix: QUEUE_PREFIX,
  });
  queue.on('error', () => undefined);
  try {
    await queueReady(queue, CONNECT_WAIT_MS, 'the rotation queue');
    const jobId = secretRotateJobId(webhookId, dueAt);
    const data: JobPayloads[typeof JobName.SecretRotate] = { webhookId, dueAt: dueAt.toISOString() };
    await queue.add(JobName.SecretRotate, data, {
      jobId,
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 3,
      backoff: { type: 'exponential', delay: 1000 },
    });
    return jobId;
  } finally {
    await closeQueue(queue);
    disconnectClusterClients();
  }
}
