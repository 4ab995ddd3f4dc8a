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

/**
 * Closes a queue. Closing sends QUIT, which fails while Redis is away: then the client just stops reconnecting
 * (BullMQ's own disconnect would wait for an end event that a reconnecting client never emits).
 */
export async function closeQueue(queue: Queue): Promise<void> {
  await queue.close().catch(async () => (await queue.client).disconnect());
}
