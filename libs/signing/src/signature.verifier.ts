import { timingSafeEqual } from 'node:crypto';
import { DeliveryHeader } from './delivery-headers.builder';
import { signatureDigest } from './signature.signer';

/** Why a delivery was not accepted as authentic. */
export type SignatureFailureReason =
  | 'missing_header'
  | 'malformed_header'
  | 'timestamp_mismatch'
  | 'timestamp_out_of_tolerance'
  | 'no_matching_signature';

/** Outcome of {@link verifyWebhookSignature}; `secretIndex` tells which of the given secrets matched. */
export type SignatureVerification =
  { ok: true; secretIndex: number; timestamp: number } | { ok: false; reason: SignatureFailureReason };

/** A single header value as frameworks hand it over (Node gives arrays for repeated headers). */
export type HeaderValue = string | readonly string[] | null | undefined;

/** Request headers: a plain record (any letter case, e.g. Node's `IncomingHttpHeaders`) or a Fetch `Headers`. */
export type HeaderSource = Readonly<Record<string, HeaderValue>> | { get(name: string): string | null };

interface VerifyOptions {
  /** The body exactly as received, before any JSON parsing. */
  rawBody: string | Buffer;
  /** The receiver's secret(s). Several are accepted while the receiver itself rolls a secret over. */
  secrets: string | readonly string[];
  /** Largest accepted distance between `t=` and now, in seconds; replays older than this fail. Default 120. */
  toleranceSeconds?: number;
  /** Current time in milliseconds since the epoch, like `Date.now`; injectable for tests. */
  now?: () => number;
}

/** Input of {@link verifyWebhookSignature}: either the request headers, or the two header values picked out. */
export type VerifyWebhookSignatureInput = VerifyOptions &
  (
    | { headers: HeaderSource }
    | { signatureHeader: string | null | undefined; timestamp?: string | number | null | undefined }
  );

/** A parsed `Anchor-Signature` value. */
export interface ParsedSignatureHeader {
  /** The `t=` value, in Unix seconds. */
  timestamp: number;
  /** Every `v1=` value, in header order, lower-cased. */
  signatures: string[];
}

/** Thrown by {@link assertWebhookSignature}; `reason` is the same code {@link verifyWebhookSignature} returns. */
export class WebhookSignatureError extends Error {
  constructor(public readonly reason: SignatureFailureReason) {
    super(`webhook signature rejected: ${reason}`);
    this.name = 'WebhookSignatureError';
  }
}

const DEFAULT_TOLERANCE_SECONDS = 120;
// Fifteen digits keep every accepted value a safe integer; real timestamps have ten.
const TIMESTAMP_PATTERN = /^\d{1,15}$/;
const V1_PATTERN = /^[0-9a-fA-F]{64}$/;

/**
 * Parses `t=<seconds>,v1=<hex>[,v1=<hex>...]`. Returns undefined unless there is exactly one `t=` and at least
 * one well-formed `v1=`. Unknown keys are skipped so a future scheme can be added next to `v1` without breaking
 * receivers.
 */
export function parseSignatureHeader(value: string): ParsedSignatureHeader | undefined {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const rawPart of value.split(',')) {
    const part = rawPart.trim();
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq);
    const val = part.slice(eq + 1);
    if (key === 't') {
      if (timestamp !== undefined || !TIMESTAMP_PATTERN.test(val)) return undefined;
      timestamp = Number(val);
    } else if (key === 'v1') {
      if (!V1_PATTERN.test(val)) return undefined;
      signatures.push(val.toLowerCase());
    }
  }
  if (timestamp === undefined || signatures.length === 0) return undefined;
  return { timestamp, signatures };
}

type Lookup = { kind: 'absent' } | { kind: 'ambiguous' } | { kind: 'value'; value: string };

function readHeader(headers: HeaderSource, name: string): Lookup {
  if (typeof headers.get === 'function') {
    const value = (headers as { get(name: string): string | null }).get(name);
    return value === null || value === undefined ? { kind: 'absent' } : { kind: 'value', value };
  }
  const wanted = name.toLowerCase();
  const found: string[] = [];
  for (const [key, value] of Object.entries(headers as Readonly<Record<string, HeaderValue>>)) {
    if (key.toLowerCase() !== wanted || value === null || value === undefined) continue;
    if (typeof value === 'string') found.push(value);
    else found.push(...value);
  }
  if (found.length === 0) return { kind: 'absent' };
  // Two copies of a security header means someone in the path added one; trusting either would be a guess.
  if (found.length > 1) return { kind: 'ambiguous' };
  return { kind: 'value', value: found[0] };
}

function pickHeaders(input: VerifyWebhookSignatureInput): { signature: Lookup; timestamp: Lookup } {
  if ('headers' in input) {
    return {
      signature: readHeader(input.headers, DeliveryHeader.Signature),
      timestamp: readHeader(input.headers, DeliveryHeader.Timestamp),
    };
  }
  const sig = input.signatureHeader;
  const ts = input.timestamp;
  return {
    signature: sig === null || sig === undefined ? { kind: 'absent' } : { kind: 'value', value: sig },
    timestamp: ts === null || ts === undefined ? { kind: 'absent' } : { kind: 'value', value: String(ts) },
  };
}

function normaliseSecrets(secrets: string | readonly string[]): readonly string[] {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  // No secret configured is a deployment mistake, not a bad request: fail loudly instead of rejecting everything.
  if (list.length === 0) throw new TypeError('at least one secret is required to verify a webhook');
  return list;
}

/**
 * Checks an incoming delivery: header present and well formed, `Anchor-Timestamp` (when sent) equal to `t=`,
 * `t=` within the tolerance of now, and at least one `v1=` matching one of the secrets. Comparisons are constant
 * time. Throws only for programming errors (no secrets, negative tolerance), never for a bad request.
 */
export function verifyWebhookSignature(input: VerifyWebhookSignatureInput): SignatureVerification {
  const secrets = normaliseSecrets(input.secrets);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Number.isNaN(tolerance) || tolerance < 0) {
    throw new TypeError('toleranceSeconds must be a non-negative number');
  }

  const { signature, timestamp } = pickHeaders(input);
  if (signature.kind === 'absent') return { ok: false, reason: 'missing_header' };
  if (signature.kind === 'ambiguous') return { ok: false, reason: 'malformed_header' };
  const parsed = parseSignatureHeader(signature.value);
  if (!parsed) return { ok: false, reason: 'malformed_header' };

  if (timestamp.kind === 'ambiguous') return { ok: false, reason: 'timestamp_mismatch' };
  if (timestamp.kind === 'value') {
    const text = timestamp.value.trim();
    if (!TIMESTAMP_PATTERN.test(text) || Number(text) !== parsed.timestamp) {
      return { ok: false, reason: 'timestamp_mismatch' };
    }
  }

  const nowSeconds = Math.floor((input.now ?? Date.now)() / 1000);
  // Future timestamps are bounded too: a far-future `t=` would otherwise stay replayable for as long.
  if (Math.abs(nowSeconds - parsed.timestamp) > tolerance) {
    return { ok: false, reason: 'timestamp_out_of_tolerance' };
  }

  const candidates = parsed.signatures.map((hex) => Buffer.from(hex, 'hex'));
  let matched = -1;
  secrets.forEach((secret, index) => {
    const expected = signatureDigest(secret, parsed.timestamp, input.rawBody);
    for (const candidate of candidates) {
      // Both are 32-byte SHA-256 digests (the parser only admits 64 hex digits), as timingSafeEqual requires.
      if (timingSafeEqual(expected, candidate) && matched === -1) matched = index;
    }
  });
  if (matched === -1) return { ok: false, reason: 'no_matching_signature' };
  return { ok: true, secretIndex: matched, timestamp: parsed.timestamp };
}

/** Throwing form of {@link verifyWebhookSignature}: returns the match or throws {@link WebhookSignatureError}. */
export function assertWebhookSignature(input: VerifyWebhookSignatureInput): {
  secretIndex: number;
  timestamp: number;
} {
  const result = verifyWebhookSignature(input);
  if (!result.ok) throw new WebhookSignatureError(result.reason);
  return { secretIndex: result.secretIndex, timestamp: result.timestamp };
}
