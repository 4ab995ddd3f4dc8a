import type { MigrationInterface, QueryRunner } from 'typeorm';
import { RotateSecretFunction1764600000000 } from './1764600000000-rotate-secret-function';

const SIGNATURE =
  'rotate_webhook_secret(uuid, text, timestamptz, integer, uuid, text, boolean, text, bytea, text, jsonb)';

/**
 * The INSERT of a `webhook.secret.previous_expired` audit event from the envelope `p_expired_audit_event`: the
 * secret of fingerprint `fingerprint` (SQL) expired at `expiredAt` (SQL), dated like the rotation (`v_now`);
 * each line indented by `indent`.
 */
const insertExpiredEvent = (fingerprint: string, expiredAt: string, indent: string): string =>
  [
    `INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)`,
    `VALUES (p_expired_audit_event ->> 'id', p_project_id, p_webhook_id, p_expired_audit_event ->> 'type', v_now,`,
    `        jsonb_set(jsonb_set(p_expired_audit_event, '{data}', jsonb_build_object(`,
    `          'fingerprint', ${fingerprint},`,
    `          'expired_at', to_char(${expiredAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))),`,
    `          '{occurred_at}', to_jsonb(to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))));`,
  ]
    .map((line) => indent + line + '\n')
    .join('');

// The audit event of the outgoing secret when a zero grace period destroyed it: it expired at the rotation.
const EXPIRED_EVENT_SQL = `        IF v_expired AND p_expired_audit_event IS NOT NULL THEN
${insertExpiredEvent('v_prev_fp', 'v_prev_until', '          ')}        END IF;
`;

// At most `bound` previous secrets still in their grace period: when the one this rotation kept makes one more, the
// oldest is destroyed now and recorded as expired at the rotation (the caller's time, as a zero grace period's
// outgoing secret is; the event is dated like the rotation's), with the event envelope of a zero grace period
// (the two never meet: a zero grace period keeps nothing). One per rotation, which holds the bound since each
// rotation keeps at most one; a caller that passes no envelope (a replica of an earlier release) trims nothing.
// The count selects by webhook alone and filters the few rows it finds: with the grace condition in its WHERE, the
// function's cached generic plan combined the webhook's index with the expiry index, reading an entry for every
// previous secret of every webhook on each rotation.
const boundSql = (
  bound: number,
  oldestFirst: string,
) => `        IF p_expired_audit_event IS NOT NULL AND v_prev_fp IS NOT NULL AND NOT v_expired THEN
          SELECT count(*) FILTER (WHERE state = 'previous' AND expires_at > p_now) INTO v_kept
          FROM webhook_secrets WHERE webhook_id = p_webhook_id;
          IF v_kept > ${bound} THEN
            DELETE FROM webhook_secrets
            WHERE id = (SELECT id FROM webhook_secrets
                        WHERE webhook_id = p_webhook_id AND state = 'previous' AND expires_at > p_now
                        ORDER BY ${oldestFirst} LIMIT 1)
            RETURNING fingerprint INTO v_dropped_fp;
            IF FOUND THEN
${insertExpiredEvent('v_dropped_fp', 'p_now', '              ')}            END IF;
          END IF;
        END IF;
`;

/**
 * The SQL that (re)creates `rotate_webhook_secret(…)` as described below, where `lastChange` is the SQL
 * expression, over the locked `webhooks` row, of the webhook's last change. Shared with
 * WebhookLastChange1764800000000, which follows a column that this migration does not have yet, and with
 * RotationZeroGraceExpired1765000000000, which adds (`expiredEvent`) a twelfth parameter: the audit event of a
 * previous secret that a zero grace period destroys at once, and with RotationTimeAfterLongWait1765100000000,
 * which moves `horizon`, the SQL time before which the last change is followed, and with
 * PreviousSecretsBound1765200000000, which keeps at most `previousBound` previous secrets in their grace period,
 * and with SecretsReplacementOrder1765600000000, which changes `oldestFirst`, the SQL order in which those beyond
 * the bound go. With the defaults the SQL is exactly the one the earlier migrations ran.
 */
export function rotateWebhookSecretSql(
  lastChange: string,
  expiredEvent = false,
  horizon = "p_now + interval '1 second'",
  previousBound?: number,
  oldestFirst = 'created_at, id',
): string {
  if (previousBound !== undefined && (!expiredEvent || !Number.isInteger(previousBound) || previousBound < 1))
    throw new Error('a bound on previous secrets needs the expired event and a positive integer');
  return `
      CREATE OR REPLACE FUNCTION rotate_webhook_secret(
        p_project_id         uuid,
        p_webhook_id         text,
        p_now                timestamptz,
        p_grace_period_hours integer,
        p_secret_id          uuid,
        p_trigger            text,
        p_claimed            boolean,
        p_key_id             text,
        p_ciphertext         bytea,
        p_fingerprint        text,
        p_audit_event        jsonb${expiredEvent ? ',\n        p_expired_audit_event jsonb' : ''}
      ) RETURNS SETOF webhooks VOLATILE LANGUAGE plpgsql AS $$
      DECLARE
        v_now        timestamptz;
        v_current    record;
        v_webhook    webhooks;
        v_prev_fp    text;
        v_prev_until timestamptz;
        v_superseded text;
        v_data       jsonb;${expiredEvent ? '\n        v_expired    boolean := false;' : ''}${previousBound !== undefined ? '\n        v_dropped_fp text;\n        v_kept       bigint;' : ''}
      BEGIN
        -- Concurrent rotations (and claims, sweeps, deletes) of the webhook queue here. The time, decided once
        -- the lock is held: after the webhook's last change, unless that is more than a second ahead.
        SELECT CASE
                 WHEN ${lastChange} >= p_now AND ${lastChange} < ${horizon}
                   THEN ${lastChange} + interval '1 millisecond'
                 ELSE p_now
               END
          INTO v_now FROM webhooks
        WHERE id = p_webhook_id AND project_id = p_project_id AND deleted_at IS NULL
        FOR UPDATE;
        IF NOT FOUND THEN
          RETURN;
        END IF;

        -- A fresh snapshot, taken after the lock: it sees what the previous holder committed.
        SELECT id, claimed, fingerprint INTO v_current
        FROM webhook_secrets WHERE webhook_id = p_webhook_id AND state = 'current';

        IF FOUND AND NOT v_current.claimed THEN
          v_superseded := v_current.fingerprint;
          DELETE FROM webhook_secrets WHERE id = v_current.id;
        ELSIF FOUND THEN
          v_prev_fp := v_current.fingerprint;
          v_prev_until := p_now + p_grace_period_hours * interval '1 hour';
          IF p_grace_period_hours = 0 THEN
            DELETE FROM webhook_secrets WHERE id = v_current.id;${expiredEvent ? '\n            v_expired := true;' : ''}
          ELSE
            UPDATE webhook_secrets SET state = 'previous', expires_at = v_prev_until WHERE id = v_current.id;
          END IF;
        END IF;

        -- After the retirement: the unique index allows one current secret per webhook.
        INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
        VALUES (p_secret_id, p_webhook_id, 'current', p_trigger, p_claimed, p_key_id, p_ciphertext, p_fingerprint, v_now);

        UPDATE rotation_schedules SET anchor_at = p_now,
          next_rotation_at = p_now + interval_days * 24 * interval '1 hour', notice_sent_for = NULL
        WHERE webhook_id = p_webhook_id;

        UPDATE webhooks SET updated_at = v_now WHERE id = p_webhook_id RETURNING * INTO v_webhook;

        -- Timestamps as everywhere in audit events: RFC 3339 UTC with milliseconds.
        v_data := (p_audit_event -> 'data') || jsonb_build_object(
          'previous_fingerprint', v_prev_fp,
          'previous_expires_at',
          to_char(v_prev_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
        IF v_superseded IS NOT NULL THEN
          v_data := v_data || jsonb_build_object('superseded_unclaimed_fingerprint', v_superseded);
        ELSE
          v_data := v_data - 'superseded_unclaimed_fingerprint';
        END IF;
        INSERT INTO audit_events (id, project_id, webhook_id, type, occurred_at, event)
        VALUES (p_audit_event ->> 'id', p_project_id, p_webhook_id, p_audit_event ->> 'type', v_now,
                jsonb_set(jsonb_set(p_audit_event, '{data}', v_data), '{occurred_at}',
                  to_jsonb(to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))));
${expiredEvent ? EXPIRED_EVENT_SQL : ''}${previousBound !== undefined ? boundSql(previousBound, oldestFirst) : ''}
        RETURN NEXT v_webhook;
      END
      $$`;
}

/**
 * `rotate_webhook_secret(…)` never dates a rotation before the webhook's last change. The caller's time is read
 * before the function waits for the webhook's row lock, so of two rotations racing, the one that committed
 * second could carry the earlier time: the webhook's `updated_at` went backwards and the audit history (newest
 * first by `occurred_at`) listed the rotations out of their real order. Once the lock is held, a time at or
 * before the webhook's `updated_at` becomes `updated_at` + 1 ms, so every change moves `updated_at` forward.
 * That time orders the change (the webhook's `updated_at`, the new secret's `created_at`, the audit event's
 * `occurred_at`); durations still run from the caller's time (the previous secret's grace period, the rotation
 * schedule), so they are exactly as asked. And only by a little: an `updated_at` more than a second ahead (a
 * replica's clock far off) is not followed, so a bad clock cannot push later changes into the future. The rest
 * is as in RotateSecretFunction1764600000000, which documents the retire rule.
 */
export class RotateSecretTimeAfterLock1764700000000 implements MigrationInterface {
  name = 'RotateSecretTimeAfterLock1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(rotateWebhookSecretSql('updated_at'));
  }

  async down(q: QueryRunner): Promise<void> {
    // Back to the function as the previous migration created it.
    await q.query(`DROP FUNCTION ${SIGNATURE}`);
    await new RotateSecretFunction1764600000000().up(q);
  }
}
