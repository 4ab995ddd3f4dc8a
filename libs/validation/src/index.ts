// Pure webhook URL and event rules: no Nest, no database, no DNS. Everything public is exported here.

/** Checks a webhook URL against every rule of the API contract and lists each violated rule. */
export { checkWebhookUrl } from './webhook-url.rule';

/** Result, violation, rule-name and policy types of {@link checkWebhookUrl}, and the stable rule names. */
export {
  URL_RULES,
  URL_RULE_MESSAGES,
  type UrlCheckResult,
  type UrlPolicy,
  type UrlRule,
  type UrlViolation,
} from './webhook-url.types';

/** Parses the `TARGET_ALLOW_CIDRS` list, or one of its entries (throwing on a bad one), and their types. */
export { parseCidr, parseCidrList, type CidrEntry, type CidrList } from './cidr-list.parser';

/** Delivery-time check of a resolved address against the same address rules as URLs. */
export { isPublicAddress } from './ip-address.rule';

/** Process-wide URL policy, set once at boot from config and used by the decorators. */
export { getDefaultUrlPolicy, setDefaultUrlPolicy } from './url-policy.store';

/** The one event catalog of the API contract and its type. */
export { EVENT_CATALOG, type WebhookEventType } from './webhook-event.catalog';

/** Event type guard, de-duplication and the "allowed values" message. */
export { isWebhookEvent, normalizeEvents, unknownEventMessage } from './webhook-event.rule';

/** class-validator decorators for DTOs and their stable constraint names. */
export {
  IS_WEBHOOK_EVENT,
  IS_WEBHOOK_URL,
  IsWebhookEvent,
  IsWebhookUrl,
  MAX_CHARACTERS,
  MaxCharacters,
} from './webhook.decorators';

/** RFC 3339 timestamps that name a real instant, and their class-validator decorator. */
export { IS_RFC3339, IsRfc3339, isRfc3339, rfc3339Instant } from './rfc3339.rule';

/** The nesting limit of JSON taken from outside (request bodies, published events) and its stack-safe check. */
export { MAX_JSON_DEPTH, nestsDeeperThan } from './json-depth.rule';
