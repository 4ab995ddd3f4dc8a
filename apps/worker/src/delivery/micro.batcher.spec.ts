import { MicroBatcher } from './micro.batcher';

describe('MicroBatcher', () => {
  it('serves concurrent loads with one call, answering each in order', async () => {
    const run = jest.fn(async (keys: number[]) => keys.map((k) => k * 10));
    const batcher = new MicroBatcher(run);
    await expect(Promise.all([1, 2, 3].map((k) => batcher.load(k)))).resolves.toEqual([10, 20, 30]);
    expect(run).toHaveBeenCalledTimes(1);
    expect(run).toHaveBeenCalledWith([1, 2, 3]);
  });

  it('flushes at once when a batch is full', async () => {
    const run = jest.fn(async (keys: number[]) => keys);
    const batcher = new MicroBatcher(run, 2, 10_000);
    await expect(Promise.all([1, 2].map((k) => batcher.load(k)))).resolves.toEqual([1, 2]);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('rejects every load of a failed batch, and the next batch works again', async () => {
    let fail = true;
    const batcher = new MicroBatcher(async (keys: number[]) => {
      if (fail) throw new Error('db down');
      return keys;
    });
    const results = await Promise.allSettled([batcher.load(1), batcher.load(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(batcher.load(3)).resolves.toBe(3);
  });
});
