import { ValidateBy, type ValidationOptions } from 'class-validator';
import { checkWebhookUrl } from './webhook-url.rule';
import { isWebhookEvent, unknownEventMessage } from './webhook-event.rule';

/** Constraint name of {@link IsWebhookUrl}; the HTTP layer keys on it to expand every violation. */
export const IS_WEBHOOK_URL = 'isWebhookUrl';

/** Constraint name of {@link IsWebhookEvent}. */
export const IS_WEBHOOK_EVENT = 'isWebhookEvent';

/** Constraint name of {@link MaxCharacters}. */
export const MAX_CHARACTERS = 'maxCharacters';

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

/**
 * The property, a string, must have at most `max` characters counted as code points, the way the URL rule and
 * JSON Schema's `maxLength` count them. Not class-validator's `MaxLength`: it counts a character followed by a
 * variation selector (U+FE0E, U+FE0F) as one, so a value of twice the limit would pass.
 */
export function MaxCharacters(max: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: MAX_CHARACTERS,
      constraints: [max],
      validator: {
        // Only strings longer than `max` UTF-16 units can have more than `max` code points.
        validate: (value: unknown) =>
          typeof value === 'string' && (value.length <= max || [...value].length <= max),
        defaultMessage: (args) => `${args?.property ?? 'value'} must be at most ${max} characters`,
      },
    },
    options,
  );
}
