/**
 * Collects single requests for a few milliseconds and serves them with one call, so a hundred concurrent
 * delivery attempts make one database round trip instead of a hundred. `run` answers in the order it was asked.
 */
export class MicroBatcher<K, V> {
  private pending: { key: K; resolve: (v: V) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: (keys: K[]) => Promise<V[]>,
    private readonly maxSize = 200,
    private readonly windowMs = 2,
  ) {}

  load(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.pending.push({ key, resolve, reject });
      if (this.pending.length >= this.maxSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    this.run(batch.map((b) => b.key)).then(
      (values) => batch.forEach((b, i) => b.resolve(values[i])),
      (error: unknown) => batch.forEach((b) => b.reject(error)),
    );
  }
}
