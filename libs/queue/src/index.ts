/** Frozen queue names, the hash-tagged key prefix, job names and the map from job name to payload type. */
export { QueueName, QUEUE_PREFIX, JobName, secretRotateJobId, type JobPayloads } from './queue-names';
/** ioredis options for BullMQ and the other Redis users, built from REDIS_URL, and the check of its database. */
export {
  bullConnection,
  createRedis,
  disconnectClusterClients,
  redisOptionsFromUrl,
  verifyRedisDatabase,
  type RedisTarget,
} from './redis-connection';
/** A round trip to the Redis node of the queues (health checks). */
export { probeRedis } from './redis-probe';
/** A promise raced against a timer, for calls to a dependency that may hang. */
export { withTimeout } from './with-timeout';
/**
 * Waiting, boundedly, for a BullMQ queue's connection (BullMQ alone waits as long as Redis stays away), and closing
 * a queue without waiting on a Redis that is away or hangs.
 */
export { queueReady, closeQueue } from './queue-connection';
/** The shared ioredis client and its token. */
export { RedisModule, REDIS, SHARED_CLIENT_OPTIONS, SHARED_COMMAND_TIMEOUT_MS } from './redis.module';
/** Producer of delivery attempts (deterministic job ids) and the job-id helpers of the dispatcher. */
export { DeliveryQueue, deliveryAttemptJobId, attemptOfJobId, type ScheduledAttempt } from './delivery.queue';

/** Queues the targeted rotation of one webhook (`secret.rotate`), for one-off callers such as the CLI. */
export { queueSecretRotation } from './rotation-jobs';
