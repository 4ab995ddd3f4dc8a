import type { Queue } from 'bullmq';
import { withTimeout } from './with-timeout';

/**
 * Resolves once the queue's connection is ready, or rejects with "Redis is unavailable" after `waitMs`: BullMQ
 * alone waits for its first connection for as long as Redis stays away, and a request or command with it.
 * Also rejects when a once-connected client is reconnecting (BullMQ keeps calling that connection ready).
 */
export async function queueReady(queue: Queue, waitMs: number, what: string): Promise<void> {
  await withTimeout(
    queue.waitUntilReady(),
    waitMs,
    () => new Error(`Redis is unavailable: ${what} is not connected`),
  );
  if ((await queue.client).status !== 'ready') {
    throw new Error(`Redis is unavailable: ${what} is reconnecting`);
  }
}

/** How long closing a queue waits for Redis to answer its QUIT before it drops the connection. */
const CLOSE_WAIT_MS = 2000;

/**
 * Closes a queue. Closing sends QUIT, which fails while Redis is away and is never answered while it hangs: then
 * the client is dropped instead, so that it stops reconnecting (BullMQ's own disconnect would wait for an end
 * event that a reconnecting client never emits) and the shutdown goes on. Never rejects.
 */
export async function closeQueue(queue: Queue, waitMs = CLOSE_WAIT_MS): Promise<void> {
  try {
    await withTimeout(queue.close(), waitMs, () => new Error('QUIT not answered'));
  } catch {
    try {
      (await withTimeout(queue.client, waitMs, () => new Error('no client'))).disconnect();
    } catch {
      // Never connected: nothing to drop.
    }
  }
}
