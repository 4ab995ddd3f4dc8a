import Redis from 'ioredis';
import { TEST_REDIS_URL } from './test-env';

// Every end-to-end file starts from an empty test Redis database. Files share it one after the other, and a file
// can leave jobs behind on purpose: a worker stopped while Redis was away keeps its job active until the lock
// lapses, and the next file's workers would then run it as a stalled job (a sweep of due rotations in the middle
// of that file's own counts).
beforeAll(async () => {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.flushdb();
  } finally {
    redis.disconnect();
  }
});
