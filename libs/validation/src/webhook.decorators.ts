import { ValidateBy, type ValidationOptions } from 'class-validator';
import { checkWebhookUrl } from './webhook-url.rule';
import { isWebhookEvent, unknownEventMessage } from './webhook-event.rule';

/** Constraint name of {@link IsWebhookUrl}; the HTTP layer keys on it to expand every violation. */
export const IS_WEBHOOK_URL = 'isWebhookUrl';

/** Constraint name of {@link IsWebhookEvent}. */
export const IS_WEBHOOK_EVENT = 'isWebhookEvent';

/**
 * The property must pass {@link checkWebhookUrl} under the process-wide policy. The default message is the first
 * violation's; call `checkWebhookUrl` again on the value to list them all.
 */
export function IsWebhookUrl(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: IS_WEBHOOK_URL,
      validator: {
        validate: (value: unknown) => checkWebhookUrl(value).ok,
        defaultMessage: (args) => checkWebhookUrl(args?.value).violations[0]?.message ?? 'url is not allowed',
      },
    },
    options,
  );
}

/** The property (or, with `{ each: true }`, each element) must be an event type of the catalog. */
export function IsWebhookEvent(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: IS_WEBHOOK_EVENT,
      validator: {
        validate: (value: unknown) => isWebhookEvent(value),
        defaultMessage: (args) => unknownEventMessage(args?.property),
      },
    },
    options,
  );
}
