import type { INestApplicationContext } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '@app/config';
import { Clock } from '@app/domain';
import { Database } from '@app/persistence';
import { queueSecretRotation } from '@app/queue';
import { CliUsageError } from '../cli-usage.error';

const USAGE = 'usage: rotation rotate <webhook_id>';

/**
 * `rotation rotate <webhook_id>`: re-runs one overdue scheduled rotation now, as a `secret.rotate` job for the
 * worker, instead of waiting for the next sweep. Prints `{"queued": true, "webhook_id", "due_at", "job_id"}`,
 * or `{"queued": false, "webhook_id", "next_rotation_at"}` when the rotation is not due yet.
 */
export async function rotationCommand(
  open: () => Promise<INestApplicationContext>,
  argv: string[],
  out: (line: string) => void,
): Promise<void> {
  const [sub, webhookId, ...extra] = argv;
  if (sub !== 'rotate' || !webhookId || extra.length > 0) throw new CliUsageError(USAGE);
  const app = await open();
  const { repos } = app.get(Database);
  const schedule = await repos.rotation.findSchedule(webhookId);
  if (!schedule) {
    const project = (await repos.webhooks.projectsOf([webhookId])).get(webhookId);
    const live = project !== undefined && (await repos.webhooks.findLive(project, webhookId)) !== null;
    throw new CliUsageError(
      live
        ? `webhook ${webhookId} has no rotation schedule (no policy applies to it)`
        : `webhook ${webhookId} not found (or deleted)`,
    );
  }
  if (schedule.nextRotationAt > app.get(Clock).now()) {
    out(
      JSON.stringify({
        queued: false,
        webhook_id: webhookId,
        next_rotation_at: schedule.nextRotationAt.toISOString(),
      }),
    );
    return;
  }
  const config = app.get<AppConfig>(APP_CONFIG);
  const jobId = await queueSecretRotation(config.redis, webhookId, schedule.nextRotationAt);
  out(
    JSON.stringify({
      queued: true,
      webhook_id: webhookId,
      due_at: schedule.nextRotationAt.toISOString(),
      job_id: jobId,
    }),
  );
}
