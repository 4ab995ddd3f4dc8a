import { isDatabaseUnavailableError } from '@app/persistence';

// ioredis reports an unreachable Redis with these messages when commands cannot be sent.
const REDIS_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'connect ECONNREFUSED',
  'Redis is unavailable',
  // A command of a client with a command timeout that Redis left unanswered (a Redis that hangs).
  'Command timed out',
  // A Redis Cluster without a master for a slot (during a failover, or with a shard down).
  'CLUSTERDOWN',
  'Too many Cluster redirections',
  "Cluster isn't ready",
  'Failed to refresh slots cache',
  // A Redis Cluster client none of whose seed nodes answers (every node down or unreachable).
  'None of startup nodes is available',
];

/** Whether `err` means Postgres or Redis is unreachable, so the answer is a 503 and not a 500. */
export function isDependencyUnavailable(err: unknown): boolean {
  if (isDatabaseUnavailableError(err)) return true;
  const message = err instanceof Error ? err.message : '';
  return REDIS_MESSAGES.some((m) => message.includes(m));
}
