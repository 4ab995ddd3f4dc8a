import { Logger } from '@nestjs/common';
import { Worker } from 'bullmq';
import { giveUpRetriesWhenClosing, logQueueError } from './queue-worker.host';

/** What Worker.prototype.retryIfFailed reads of its worker, without a Redis connection. */
function fakeWorker(state: { closing?: unknown; closed?: boolean }) {
  return Object.assign(Object.create(Worker.prototype) as object, {
    paused: false,
    closed: false,
    emit: () => true,
    delay: () => Promise.resolve(),
    ...state,
  }) as unknown as { retryIfFailed(fn: () => Promise<unknown>, opts: object): Promise<unknown> };
}

const connectionClosed = () => Promise.reject(new Error('Connection is closed.'));

describe('giveUpRetriesWhenClosing (BullMQ 5 workers)', () => {
  beforeAll(() => giveUpRetriesWhenClosing()); // applied when the module loads; calling again changes nothing

  it('ends the retries of a step that fails for a lost connection once the worker is closing', async () => {
    let calls = 0;
    // Without the rule the step would be retried at once, for ever: here it gives in after a few tries.
    const step = () => (++calls > 5 ? Promise.resolve('retried') : connectionClosed());
    await expect(fakeWorker({ closing: Promise.resolve() }).retryIfFailed(step, {})).rejects.toThrow(
      'the worker is closing; the step was not retried',
    );
    expect(calls).toBe(1);
    await expect(fakeWorker({ closed: true }).retryIfFailed(connectionClosed, {})).rejects.toThrow(/closing/);
  });

  it('still retries a lost connection while the worker runs, until the step works', async () => {
    let calls = 0;
    const step = () => (++calls < 3 ? connectionClosed() : Promise.resolve('done'));
    await expect(fakeWorker({}).retryIfFailed(step, { delayInMs: 1 })).resolves.toBe('done');
    expect(calls).toBe(3);
  });

  it('passes other errors through as they are', async () => {
    const failure = new Error('ERR something else');
    await expect(fakeWorker({}).retryIfFailed(() => Promise.reject(failure), {})).rejects.toBe(failure);
  });
});

describe('logQueueError', () => {
  function levelOf(e: Error): 'debug' | 'warn' {
    const logger = new Logger('test');
    const debug = jest.spyOn(logger, 'debug').mockImplementation(() => undefined);
    const warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
    logQueueError(logger, 'rotation queue', e);
    expect(debug.mock.calls.length + warn.mock.calls.length).toBe(1);
    return debug.mock.calls.length === 1 ? 'debug' : 'warn';
  }

  it('logs a lost connection as a debug line, the outage being reported once elsewhere', () => {
    expect(
      levelOf(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' })),
    ).toBe('debug');
    expect(levelOf(new Error('Connection is closed.'))).toBe('debug');
    expect(levelOf(new Error('CLUSTERDOWN The cluster is down'))).toBe('debug');
    // A Redis Cluster client whose seed nodes are all down reports this on every retry, about ten times a second.
    expect(levelOf(new Error('None of startup nodes is available'))).toBe('debug');
  });

  it('logs anything else as a warning', () => {
    expect(levelOf(new Error('ERR unknown command'))).toBe('warn');
  });
});
