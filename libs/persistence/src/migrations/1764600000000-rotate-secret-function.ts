import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `rotate_webhook_secret(…)`: a manual rotation as one database function, so the route costs one round trip
 * (called on its own, it is the whole transaction). It has to be a function rather than one statement: it
 * first waits for the webhook's row lock, and a single statement's snapshot, taken before that wait, would
 * not see the secret the previous lock holder committed. In READ COMMITTED every statement of a VOLATILE
 * plpgsql function takes a fresh snapshot, so the read that follows the lock sees it.
 */
export class RotateSecretFunction1764600000000 implements MigrationInterface {
  name = 'RotateSecretFunction1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION rotate_webhook_secret(
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
        p_audit_event        jsonb
      ) RETURNS SETOF webhooks VOLATILE LANGUAGE plpgsql AS $$
      -- Replaces the current secret of a live webhook of the project with the given one and returns the
      -- webhook as updated; returns no row, having changed nothing, when there is no such webhook.
      --
      -- The outgoing current secret is retired by one rule: an unclaimed one (made by a scheduled rotation
      -- nobody fetched) is destroyed, since no receiver can hold it, and reported as
      -- superseded_unclaimed_fingerprint; a claimed one is reported as previous_fingerprint with
      -- previous_expires_at = p_now + the grace period, and keeps signing as previous until then, or is
      -- destroyed at once when the grace period is 0.
      --
      -- Also restarts the rotation clock (as RotationRepository.restartClock does), bumps the webhook's
      -- updated_at, and records the audit event: p_audit_event is its envelope, whose data gets
      -- previous_fingerprint, previous_expires_at and, when one was superseded, superseded_unclaimed_fingerprint
      -- filled in here.
      DECLARE
        v_current    record;
        v_webhook    webhooks;
        v_prev_fp    text;
        v_prev_until timestamptz;
        v_superseded text;
        v_data       jsonb;
      BEGIN
        -- Concurrent rotations (and claims, sweeps, deletes) of the webhook queue here.
        PERFORM 1 FROM webhooks
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
            DELETE FROM webhook_secrets WHERE id = v_current.id;
          ELSE
            UPDATE webhook_secrets SET state = 'previous', expires_at = v_prev_until WHERE id = v_current.id;
          END IF;
        END IF;

        -- After the retirement: the unique index allows one current secret per webhook.
        INSERT INTO webhook_secrets (id, webhook_id, state, trigger, claimed, key_id, ciphertext, fingerprint, created_at)
        VALUES (p_secret_id, p_webhook_id, 'current', p_trigger, p_claimed, p_key_id, p_ciphertext, p_fingerprint, p_now);

        UPDATE rotation_schedules SET anchor_at = p_now,
          next_rotation_at = p_now + interval_days * 24 * interval '1 hour', notice_sent_for = NULL
        WHERE webhook_id = p_webhook_id;

        UPDATE webhooks SET updated_at = p_now WHERE id = p_webhook_id RETURNING * INTO v_webhook;

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
        VALUES (p_audit_event ->> 'id', p_project_id, p_webhook_id, p_audit_event ->> 'type', p_now,
                jsonb_set(p_audit_event, '{data}', v_data));

        RETURN NEXT v_webhook;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      'DROP FUNCTION rotate_webhook_secret(uuid, text, timestamptz, integer, uuid, text, boolean, text, bytea, text, jsonb)',
    );
  }
}
