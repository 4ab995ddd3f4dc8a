/** Create `Anchor-Signature` values: one HMAC-SHA256 per secret over `v0:<timestamp>:<raw body>`. */
export { computeSignature, signatureHeader, type SignatureHeaderInput } from './signature.signer';
/** Build the full header record of a delivery attempt, signature included. */
export {
  deliveryHeaders,
  DeliveryHeader,
  DELIVERY_USER_AGENT,
  type DeliveryHeaderName,
  type DeliveryHeadersInput,
} from './delivery-headers.builder';
/** Verify a received delivery (for receivers and for our own tests), as a result or as a throwing call. */
export {
  verifyWebhookSignature,
  assertWebhookSignature,
  parseSignatureHeader,
  WebhookSignatureError,
  type SignatureVerification,
  type SignatureFailureReason,
  type VerifyWebhookSignatureInput,
  type ParsedSignatureHeader,
  type HeaderSource,
  type HeaderValue,
} from './signature.verifier';
