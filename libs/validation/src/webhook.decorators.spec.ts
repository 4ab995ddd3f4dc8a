import 'reflect-metadata';
import { validate } from 'class-validator';
import { parseCidrList } from './cidr-list.parser';
import { setDefaultUrlPolicy } from './url-policy.store';
import { IsWebhookEvent, IsWebhookUrl } from './webhook.decorators';
import { checkWebhookUrl } from './webhook-url.rule';
import { EVENT_CATALOG } from './webhook-event.catalog';

class CreateWebhook {
  @IsWebhookUrl()
  url!: unknown;

  @IsWebhookEvent({ each: true })
  subscribed_events!: unknown[];
}

class TestEvent {
  @IsWebhookEvent()
  event_type!: unknown;
}

const make = (url: unknown, events: unknown[] = ['task.completed']) =>
  Object.assign(new CreateWebhook(), { url, subscribed_events: events });

describe('decorators', () => {
  afterEach(() => setDefaultUrlPolicy({}));

  it('accepts a valid webhook', async () => {
    expect(await validate(make('https://example.com/hook', ['task.completed', 'batch.failed']))).toEqual([]);
  });

  it.each([
    ['https://127.0.0.1/', 'url must not point at a private, loopback or link-local address'],
    ['http://example.com/', 'url must use https'],
    ['https://localhost/', 'url must not point at an internal or special-use host name'],
    [42, 'url must be a string'],
  ])('refuses %j under constraint isWebhookUrl with the first violation as message', async (url, message) => {
    const [error, ...others] = await validate(make(url));
    expect(others).toEqual([]);
    expect(error.property).toBe('url');
    expect(error.constraints).toEqual({ isWebhookUrl: message });
    expect(checkWebhookUrl(error.value).violations[0].message).toBe(message);
  });

  it('follows the process-wide policy', async () => {
    expect(await validate(make('https://10.0.0.5:8443/'))).toHaveLength(1);
    setDefaultUrlPolicy({ allowCidrs: parseCidrList('10.0.0.0/8') });
    expect(await validate(make('https://10.0.0.5:8443/'))).toEqual([]);
  });

  it('checks each subscribed event and lists the allowed values', async () => {
    const [error] = await validate(make('https://example.com/', ['task.completed', 'task.exploded']));
    expect(error.property).toBe('subscribed_events');
    expect(Object.keys(error.constraints ?? {})).toEqual(['isWebhookEvent']);
    expect(error.constraints?.isWebhookEvent).toBe(
      `subscribed_events must be one of: ${EVENT_CATALOG.join(', ')}`,
    );
  });

  it('checks a single event type', async () => {
    expect(await validate(Object.assign(new TestEvent(), { event_type: 'session.recording.ready' }))).toEqual(
      [],
    );
    const [error] = await validate(Object.assign(new TestEvent(), { event_type: 'nope' }));
    expect(error.constraints?.isWebhookEvent).toMatch(/^event_type must be one of: task\.completed, /);
  });
});
