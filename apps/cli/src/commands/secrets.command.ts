import type { INestApplicationContext } from '@nestjs/common';
import { APP_CONFIG, DEVELOPMENT_KEY_WARNING, type AppConfig } from '@app/config';
import { SecretsService } from '@app/domain';
import { Database } from '@app/persistence';
import { CliUsageError } from '../cli-usage.error';

/**
 * `secrets reencrypt`: rewrites everything stored under an older key of the ring under its first key (webhook
 * secrets and stored idempotent responses). Prints `{"reencrypted": <secrets>, "idempotent_responses": <n>}`.
 */
export async function secretsCommand(
  open: () => Promise<INestApplicationContext>,
  argv: string[],
  out: (line: string) => void,
): Promise<void> {
  if (argv[0] !== 'reencrypt' || argv.length !== 1) throw new CliUsageError('usage: secrets reencrypt');
  const app = await open();
  // The one command that encrypts: re-encrypting under the development key must not go unnoticed.
  if (app.get<AppConfig>(APP_CONFIG).secrets.usingDevelopmentKey) {
    process.stderr.write(`warning: ${DEVELOPMENT_KEY_WARNING}\n`);
  }
  const rewritten = await app.get(SecretsService).reencryptAll(app.get(Database));
  out(
    JSON.stringify({ reencrypted: rewritten.secrets, idempotent_responses: rewritten.idempotentResponses }),
  );
}
