import type { INestApplicationContext } from '@nestjs/common';
import { SecretsService } from '@app/domain';
import { Database } from '@app/persistence';
import { CliUsageError } from '../cli-error';

/**
 * `secrets reencrypt`: rewrites everything stored under an older key of the ring under its first key (webhook
 * secrets and stored idempotent responses). Prints `{"reencrypted": <secrets>, "idempotent_responses": <n>}`.
 */
export async function secretsCommand(
  app: INestApplicationContext,
  argv: string[],
  out: (line: string) => void,
): Promise<void> {
  if (argv[0] !== 'reencrypt' || argv.length !== 1) throw new CliUsageError('usage: secrets reencrypt');
  const rewritten = await app.get(SecretsService).reencryptAll(app.get(Database));
  out(
    JSON.stringify({ reencrypted: rewritten.secrets, idempotent_responses: rewritten.idempotentResponses }),
  );
}
