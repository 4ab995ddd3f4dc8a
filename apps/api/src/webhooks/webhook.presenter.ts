import type { WebhookWithSecret } from '@app/domain';
import type { WebhookEntity } from '@app/persistence';
import type { WebhookResponse, WebhookWithSecretResponse } from './dto/webhook.response';

/** The public shape of a webhook: exactly these fields, always all present. */
export function presentWebhook(w: WebhookEntity): WebhookResponse {
  return {
    id: w.id,
    project_id: w.projectId,
    url: w.url,
    description: w.description,
    subscribed_events: w.subscribedEvents,
    enabled: w.enabled,
    created_at: w.createdAt.toISOString(),
    updated_at: w.updatedAt.toISOString(),
  };
}

/**
 * The public shape plus the secret in the clear: the answer of create, rotate-secret and claim, and the response
 * an Idempotency-Key stores for them.
 */
export function presentWebhookWithSecret({ webhook, secret }: WebhookWithSecret): WebhookWithSecretResponse {
  return { ...presentWebhook(webhook), secret };
}
