/**
 * Runs `step` (which removes up to `limit` rows and says how many) until a batch comes back short; the total.
 * Bounded batches keep each statement short and no lock long, and a backlog still clears in one run.
 */
export async function inBatches(limit: number, step: (limit: number) => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await step(limit);
    total += n;
    if (n < limit) return total;
  }
}
