import type Redis from 'ioredis';
import { QUEUE_PREFIX } from './queue-names';

/**
 * Round-trips to the Redis node that holds the queues: a keyed read in their hash slot. On one node it is as
 * cheap as PING; on a cluster a PING goes to any node and answers while the queues' shard is down (the cluster
 * state `fail`), which this does not.
 */
export async function probeRedis(redis: Redis): Promise<void> {
  await redis.exists(`${QUEUE_PREFIX}:probe`);
}
