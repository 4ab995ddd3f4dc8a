import type { Repositories } from '@app/persistence';
import type { AuditRelaySignal } from './audit-relay.signal';
import { AuditRecorder } from './audit.recorder';

describe('AuditRecorder.record', () => {
  const input = {
    type: 'webhook.url_rejected' as const,
    projectId: '00000000-0000-4000-8000-000000000001',
    webhookId: null,
    actor: { type: 'api_key' as const, id: 'key_1' },
    requestId: 'req-1',
    occurredAt: new Date('2026-11-22T09:00:00.000Z'),
    data: {
      operation: 'create' as const,
      host: 'localhost',
      rule: 'private_address',
      rules: ['private_address'],
    },
  };

  /** Repositories that record what happens, in order; `afterCommit` runs at once as on the pool, or at `commit`. */
  function repos(inTransaction: boolean) {
    const order: string[] = [];
    const committed: (() => void)[] = [];
    const tx = {
      afterCommit: (fn: () => void) => (inTransaction ? committed.push(fn) : fn()),
      auditEvents: { append: async () => void order.push('insert') },
    } as unknown as Repositories;
    const signal = { nudge: () => order.push('wake-up') } as unknown as AuditRelaySignal;
    return { order, tx, signal, commit: () => committed.forEach((fn) => fn()) };
  }

  it('wakes the relay only once the row is written, when it writes on the pool', async () => {
    const { order, tx, signal } = repos(false);
    await new AuditRecorder(signal).record(tx, input);
    expect(order).toEqual(['insert', 'wake-up']);
  });

  it('wakes the relay after the commit, when it writes in a transaction', async () => {
    const { order, tx, signal, commit } = repos(true);
    await new AuditRecorder(signal).record(tx, input);
    expect(order).toEqual(['insert']);
    commit();
    expect(order).toEqual(['insert', 'wake-up']);
  });
});
