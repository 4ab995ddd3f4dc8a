import { EVENT_CATALOG } from './webhook-event.catalog';
import { isWebhookEvent, normalizeEvents, unknownEventMessage } from './webhook-event.rule';

describe('event rules', () => {
  it('holds exactly the catalog of the API contract', () => {
    expect(EVENT_CATALOG).toEqual([
      'task.completed',
      'task.failed',
      'task.cancelled',
      'task.healed',
      'session.completed',
      'session.failed',
      'session.recording.ready',
      'batch.completed',
      'batch.failed',
      'intervention.requested',
      'intervention.resolved',
      'identity.authenticated',
      'identity.authentication_failed',
    ]);
  });

  it.each(EVENT_CATALOG.map((e) => [e]))('knows %s', (event) => {
    expect(isWebhookEvent(event)).toBe(true);
  });

  it.each([
    ['Task.Completed'],
    [' task.completed'],
    ['task.completed '],
    ['task'],
    ['task.*'],
    [''],
    [null],
    [undefined],
    [1],
    [['task.completed']],
    ['__proto__'],
    ['toString'],
  ])('refuses %j', (value) => {
    expect(isWebhookEvent(value)).toBe(false);
  });

  it.each([
    [[], []],
    [['task.failed'], ['task.failed']],
    [
      ['task.failed', 'task.completed', 'task.failed'],
      ['task.failed', 'task.completed'],
    ],
    [['batch.failed', 'batch.failed', 'batch.failed'], ['batch.failed']],
    [
      ['session.failed', 'task.healed', 'session.failed', 'task.completed', 'task.healed'],
      ['session.failed', 'task.healed', 'task.completed'],
    ],
  ])('normalizes %j to %j, keeping the first occurrence order', (input, expected) => {
    expect(normalizeEvents(input)).toEqual(expected);
  });

  it('does not modify its input', () => {
    const input = ['task.failed', 'task.failed'] as const;
    normalizeEvents(input);
    expect(input).toEqual(['task.failed', 'task.failed']);
  });

  it('lists every allowed value in the unknown-type message', () => {
    const message = unknownEventMessage('subscribed_events');
    expect(message.startsWith('subscribed_events must be one of: ')).toBe(true);
    for (const event of EVENT_CATALOG) expect(message).toContain(event);
    expect(unknownEventMessage()).toMatch(/^event_type must be one of: task\.completed, /);
  });
});
