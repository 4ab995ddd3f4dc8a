import type { AppConfig } from '@app/config';
import { DeliveryQueue, attemptOfJobId, deliveryAttemptJobId } from './delivery.queue';

describe('delivery attempt job ids', () => {
  const id = '0b5c7e1e-6d4b-4bd0-9c1e-1a2b3c4d5e6f';

  it('round-trip the attempt number and never contain a colon', () => {
    for (const attempt of [1, 2, 6, 20]) {
      const jobId = deliveryAttemptJobId(id, attempt);
      expect(jobId).not.toContain(':');
      expect(attemptOfJobId(jobId)).toBe(attempt);
    }
  });

  it('reject ids of another shape', () => {
    expect(attemptOfJobId(undefined)).toBeUndefined();
    expect(attemptOfJobId('42')).toBeUndefined();
    expect(attemptOfJobId(id)).toBeUndefined();
    expect(attemptOfJobId(`${id}-x`)).toBeUndefined();
  });
});

describe('DeliveryQueue while Redis is unreachable', () => {
  // Without the connect wait, each call would hang until Redis came back (and this test until jest's timeout).
  it('fails within the connect wait with an error answered as 503, instead of waiting for Redis', async () => {
    // Nothing listens on port 1: BullMQ alone would wait for a first connection for as long as that lasts.
    const config = { redis: { url: 'redis://127.0.0.1:1/0' } } as AppConfig;
    const queue = new DeliveryQueue(config, 300);
    try {
      await expect(queue.ensureConnected()).rejects.toThrow(/Redis is unavailable/);
      await expect(
        queue.schedule([
          {
            deliveryId: '0b5c7e1e-6d4b-4bd0-9c1e-1a2b3c4d5e6f',
            projectId: '7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09',
            webhookId: 'wh_01ARZ3NDEKTSV4RRFFQ69G5FAV',
            attempt: 1,
            delayMs: 0,
          },
        ]),
      ).rejects.toThrow(/Redis is unavailable/);
      await expect(
        queue.areQueued([{ deliveryId: '0b5c7e1e-6d4b-4bd0-9c1e-1a2b3c4d5e6f', attempt: 1 }]),
      ).rejects.toThrow(/Redis is unavailable/);
    } finally {
      await queue.onApplicationShutdown();
    }
  });
});
