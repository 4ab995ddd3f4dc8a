import { JobName, QUEUE_PREFIX, QueueName, secretRotateJobId } from './queue-names';

// Written out here on purpose: these names live in Redis and in operators' scripts, so a rename of a value in
// queue-names.ts (even a consistent one, which every other test would follow) must fail a test.
describe('frozen queue and job names', () => {
  it('keeps the queue names and their key prefix', () => {
    expect({ ...QueueName }).toEqual({
      Rotation: 'rotation',
      Audit: 'audit',
      Delivery: 'delivery',
      Housekeeping: 'housekeeping',
    });
    expect(QUEUE_PREFIX).toBe('{webhooks}');
  });

  it('keeps the job names', () => {
    expect(JobName).toEqual({
      RotationSweep: 'rotation.sweep',
      SecretRotate: 'secret.rotate',
      AuditRelay: 'audit.relay',
      DeliveryAttempt: 'delivery.attempt',
      SecretsExpire: 'secrets.expire',
      DeliveriesPurge: 'deliveries.purge',
      AuditPurge: 'audit.purge',
    });
  });

  it('keeps the id of a targeted rotation job: one per webhook and due time, no colon', () => {
    const dueAt = new Date('2026-11-22T09:41:07.123Z');
    expect(secretRotateJobId('wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P', dueAt)).toBe(
      `rotate-wh_01JD4W1B6T0Q8H3X2Z5N7M9K4P-${dueAt.getTime()}`,
    );
  });
});
