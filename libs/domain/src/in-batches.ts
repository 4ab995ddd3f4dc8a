/**
 * Runs `step` (which removes up to `limit` rows and says how many) until a batch comes back short; the total.
 * Bounded batches keep each statement short and no lock long, and a backlog still clears in one run. Once
 * `stopping` answers true (the worker is shutting down) no further batch starts: the rest waits for the next run.
 */
export async function inBatches(
  limit: number,
  step: (limit: number) => Promise<number>,
  stopping: () => boolean = () => false,
): Promise<number> {
  let total = 0;
  while (!stopping()) {
    const n = await step(limit);
    total += n;
    if (n < limit) break;
  }
  return total;
}
