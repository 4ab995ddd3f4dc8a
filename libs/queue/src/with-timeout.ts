/**
 * `work`, or a rejection with `timeout()` once `ms` have passed without it settling; the timer never outlives the
 * race. For calls to a Redis (or Postgres) that may hang instead of refusing.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, timeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
