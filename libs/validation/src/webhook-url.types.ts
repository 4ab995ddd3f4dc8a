import type { CidrList } from './cidr-list.parser';

/** Stable names of the webhook URL rules; they appear as `details[].rule` in API errors, so never rename one. */
export const URL_RULES = [
  'form',
  'scheme',
  'length',
  'credentials',
  'ip_literal_form',
  'zone_id',
  'private_address',
  'ipv4_embedded',
  'metadata_service',
  'internal_name',
  'single_label',
  'aws_endpoint',
] as const;

/** One of the stable webhook URL rule names. */
export type UrlRule = (typeof URL_RULES)[number];

/** One violated rule with a human sentence that starts with "url ". */
export interface UrlViolation {
  rule: UrlRule;
  message: string;
}

/** Outcome of a URL check: every violated rule, in a stable order, and the normalized host. */
export interface UrlCheckResult {
  ok: boolean;
  /** Host after IDNA mapping, lower-cased, without a trailing dot or port; null when the URL does not parse. */
  host: string | null;
  violations: UrlViolation[];
}

/** Operator settings that relax the address rules. */
export interface UrlPolicy {
  /**
   * Addresses inside one of these blocks pass the private-address rules (the `TARGET_ALLOW_CIDRS` escape hatch,
   * e.g. for a receiver on the same private network). Host names are never relaxed.
   */
  allowCidrs?: CidrList;
}

/** The sentence reported for each rule when one message per rule is enough. */
export const URL_RULE_MESSAGES: Readonly<Record<UrlRule, string>> = {
  form: 'url must be an absolute https URL of the form https://host[:port][/path][?query][#fragment]',
  scheme: 'url must use https',
  length: 'url must be between 1 and 2048 characters long',
  credentials: 'url must not contain credentials or an @ before the host',
  ip_literal_form: 'url must write an IPv4 address in canonical dotted-decimal form (four decimal parts)',
  zone_id: 'url must not use an IPv6 zone id',
  private_address: 'url must not point at a private, loopback or link-local address',
  ipv4_embedded: 'url must not use an IPv6 address that embeds an IPv4 address',
  metadata_service: 'url must not point at a cloud metadata service',
  internal_name: 'url must not point at an internal or special-use host name',
  single_label: 'url must use a fully qualified host name, not a single label',
  aws_endpoint: 'url must not point at an AWS STS, IAM or EKS endpoint',
};
