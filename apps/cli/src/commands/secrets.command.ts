import type { INestApplicationContext } from '@nestjs/common';
import { SecretsService } from '@app/domain';
import { Database } from '@app/persistence';
import { CliUsageError } from '../cli-error';

/** `secrets reencrypt`: rewrites every stored secret under the first key of the ring. */
export async function secretsCommand(
  app: INestApplicationContext,
  argv: string[],
  out: (line: string) => void,
): Promise<void> {
  if (argv[0] !== 'reencrypt' || argv.length !== 1) throw new CliUsageError('usage: secrets reencrypt');
  const rewritten = await app.get(SecretsService).reencryptAll(app.get(Database));
  out(JSON.stringify({ reencrypted: rewritten }));
}
