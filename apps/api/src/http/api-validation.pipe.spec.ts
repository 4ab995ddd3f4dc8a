import 'reflect-metadata';
import { ValidationPipe, type ArgumentMetadata } from '@nestjs/common';
import fc from 'fast-check';
import { ValidationFailedError } from '@app/domain';
import { ListAuditEventsQuery } from '../audit/dto/list-audit-events.query';
import { CreateWebhookDto } from '../webhooks/dto/create-webhook.dto';
import { RotateSecretDto } from '../webhooks/dto/rotate-secret.dto';
import { UpdateWebhookDto } from '../webhooks/dto/update-webhook.dto';
import { ApiValidationPipe } from './api-validation.pipe';

const pipe = new ApiValidationPipe();
const create: ArgumentMetadata = { type: 'body', metatype: CreateWebhookDto };

/** What `run` throws, as the error body's `error` and `details`. */
async function refusal(run: () => Promise<unknown>): Promise<{ error: string; details: unknown }> {
  try {
    await run();
  } catch (e) {
    if (!(e instanceof ValidationFailedError)) throw e;
    return { error: e.message, details: e.details };
  }
  throw new Error('not refused');
}

describe('ApiValidationPipe and unknown fields', () => {
  it('never transforms or validates what an unknown field holds', async () => {
    // Any walk into this value (class-transformer's copy, the pollution-key strip, validation) throws.
    const untouchable = new Proxy(
      {},
      {
        ownKeys: () => {
          throw new Error('walked into an unknown field');
        },
        get: () => {
          throw new Error('walked into an unknown field');
        },
      },
    );
    const body = {
      url: 'https://hooks.example.com/x',
      subscribed_events: ['task.completed'],
      x: untouchable,
    };
    expect(await refusal(() => pipe.transform(body, create))).toEqual({
      error: 'unknown field "x"',
      details: [{ field: 'x', rule: 'unknown_field', message: 'unknown field "x"' }],
    });
  });

  it('names the unknown fields first, then every rule the known ones break, as the whole validation did', async () => {
    const body = JSON.parse(`{"x":[${Array(21_000).fill('{}').join(',')}],"description":7}`) as object;
    expect(await refusal(() => pipe.transform(body, create))).toEqual({
      error: 'unknown field "x"',
      details: [
        { field: 'x', rule: 'unknown_field', message: 'unknown field "x"' },
        { field: 'url', rule: 'required', message: 'url is required' },
        { field: 'subscribed_events', rule: 'required', message: 'subscribed_events is required' },
        { field: 'description', rule: 'type', message: 'description must be a string or null' },
      ],
    });
  });

  // The refusal is the one class-validator's whitelist gives after transforming everything (the parent's
  // transform, on a copy of the same value): only cheaper.
  const notInherited = (k: string) => !(k in Object.prototype) && k !== 'prototype';
  const anyValue = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(
      'https://hooks.example.com/x',
      'http://10.0.0.1/',
      ['task.completed'],
      ['nope'],
      'x'.repeat(300),
    ),
  );
  it.each([
    ['create', create, ['url', 'subscribed_events', 'description']],
    [
      'update',
      { type: 'body', metatype: UpdateWebhookDto },
      ['url', 'subscribed_events', 'description', 'enabled'],
    ],
    ['rotate-secret', { type: 'body', metatype: RotateSecretDto }, ['grace_period_hours']],
    [
      'an audit query',
      { type: 'query', metatype: ListAuditEventsQuery },
      ['webhook_id', 'type', 'limit', 'since'],
    ],
  ] as [string, ArgumentMetadata, string[]][])(
    '%s: the same error as the whole validation gives',
    async (_, metadata, knownNames) => {
      const value = fc
        .tuple(
          fc.dictionary(fc.constantFrom(...knownNames), anyValue, { maxKeys: knownNames.length }),
          fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter(notInherited), anyValue, {
            minKeys: 1,
            maxKeys: 5,
          }),
        )
        .map(([known, other]) => ({ ...other, ...known }))
        .filter((v) => Object.keys(v).some((k) => !knownNames.includes(k)));
      await fc.assert(
        fc.asyncProperty(value, async (v) => {
          const whole = await refusal(() =>
            ValidationPipe.prototype.transform.call(pipe, structuredClone(v), metadata),
          );
          expect(await refusal(() => pipe.transform(structuredClone(v), metadata))).toEqual(whole);
        }),
        { numRuns: 300 },
      );
    },
  );
});
