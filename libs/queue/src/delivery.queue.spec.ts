import { attemptOfJobId, deliveryAttemptJobId } from './delivery.queue';

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
