import type { INestApplicationContext } from '@nestjs/common';
import { parseArgs } from 'node:util';
import { ApiKeysService } from '@app/domain';
import { CliUsageError } from '../cli-usage.error';
import { refuseRepeatedOptions } from '../repeated-options';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ADMIN = { type: 'admin' as const, id: 'cli' };

/** `api-keys create|list|revoke`. */
export async function apiKeysCommand(
  open: () => Promise<INestApplicationContext>,
  argv: string[],
  out: (line: string) => void,
): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create': {
      const { values, tokens } = parseArgs({
        args: rest,
        options: { project: { type: 'string' }, name: { type: 'string' } },
        tokens: true,
      });
      refuseRepeatedOptions(tokens);
      if (values.project !== undefined && !UUID.test(values.project))
        throw new CliUsageError('--project must be a UUID');
      // An empty name would be stored as one, which lists like a key without a name but is not one: leave it out.
      if (values.name !== undefined && values.name.trim() === '')
        throw new CliUsageError('--name must not be empty (leave it out for a key without a name)');
      // Characters as Postgres counts them (code points), not UTF-16 units: an emoji is one, not two.
      if (values.name !== undefined && [...values.name].length > 200)
        throw new CliUsageError('--name must be at most 200 characters');
      const keys = (await open()).get(ApiKeysService);
      out(
        JSON.stringify(
          await keys.create({
            projectId: values.project?.toLowerCase(),
            name: values.name ?? null,
            actor: ADMIN,
          }),
        ),
      );
      return;
    }
    case 'list': {
      const { values, tokens } = parseArgs({
        args: rest,
        options: { project: { type: 'string' } },
        tokens: true,
      });
      refuseRepeatedOptions(tokens);
      if (!values.project || !UUID.test(values.project))
        throw new CliUsageError('api-keys list needs --project <uuid>');
      const keys = (await open()).get(ApiKeysService);
      for (const key of await keys.list(values.project.toLowerCase())) out(JSON.stringify(key));
      return;
    }
    case 'revoke': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      if (positionals.length !== 1) throw new CliUsageError('usage: api-keys revoke <api_key_id>');
      const keys = (await open()).get(ApiKeysService);
      const { confirmed, unconfirmed, unchecked } = await keys.revoke(positionals[0], ADMIN);
      if (unchecked !== undefined) {
        process.stderr.write(
          `warning: revoked, but the API replicas' confirmation was not awaited (${unchecked}); they ` +
            `refuse the key once their change notification arrives\n`,
        );
      }
      if (unconfirmed.length > 0) {
        process.stderr.write(
          `warning: ${unconfirmed.length} API replica(s) did not confirm within API_KEY_CONFIRM_SECONDS that ` +
            `they dropped the key (feed connection pids ${unconfirmed.join(', ')}); they refuse it once ` +
            `their feed catches up or reconnects, and at the latest after API_KEY_CACHE_SECONDS\n`,
        );
      }
      out(
        JSON.stringify({
          api_key_id: positionals[0],
          revoked: true,
          replicas_confirmed: confirmed,
          replicas_unconfirmed: unconfirmed.length,
          // False when the replicas' confirmation was not awaited at all (see stderr).
          replicas_checked: unchecked === undefined,
        }),
      );
      return;
    }
    default:
      throw new CliUsageError(
        'usage: api-keys create [--project <uuid>] [--name <text>] | list --project <uuid> | revoke <api_key_id>',
      );
  }
}
