import type { RotationPolicyView, SecretStatusView } from '@app/domain';
import type { RotationPolicyResponse, SecretStatusResponse } from './dto/rotation.response';

/** The wire shape of a rotation policy. */
export function presentRotationPolicy(v: RotationPolicyView): RotationPolicyResponse {
  return {
    webhook_id: v.policy.webhookId,
    interval_days: v.policy.intervalDays,
    grace_period_hours: v.policy.gracePeriodHours,
    next_rotation_at: v.nextRotationAt.toISOString(),
    last_rotated_at: v.lastRotatedAt?.toISOString() ?? null,
    created_at: v.policy.createdAt.toISOString(),
    updated_at: v.policy.updatedAt.toISOString(),
  };
}

/** The wire shape of a secret status. */
export function presentSecretStatus(v: SecretStatusView): SecretStatusResponse {
  return {
    current: {
      created_at: v.current.createdAt.toISOString(),
      fingerprint: v.current.fingerprint,
      trigger: v.current.trigger,
      claimed: v.current.claimed,
    },
    previous: v.previous.map((p) => ({
      created_at: p.createdAt.toISOString(),
      expires_at: p.expiresAt.toISOString(),
      fingerprint: p.fingerprint,
    })),
    next_rotation_at: v.nextRotationAt?.toISOString() ?? null,
  };
}
