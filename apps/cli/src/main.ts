import 'reflect-metadata';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigError, loadConfig } from '@app/config';
import { DomainError } from '@app/domain';
import {
  DatabaseConnector,
  ensureDatabase,
  isDatabaseUnavailableError,
  runMigrations,
} from '@app/persistence';
import { CliModule } from './cli.module';
import { CliUsageError } from './cli-usage.error';
import { apiKeysCommand } from './commands/api-keys.command';
import { auditCommand } from './commands/audit.command';
import { rotationCommand } from './commands/rotation.command';
import { secretsCommand } from './commands/secrets.command';

const USAGE = `usage: cli <command>
  api-keys create [--project <uuid>] [--name <text>]
  api-keys list --project <uuid>
  api-keys revoke <api_key_id>
  migrate
  audit tail [--group <name> [--consumer <name>]] [--from-start]
  secrets reencrypt
  rotation rotate <webhook_id>`;

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Prints one line; settles once stdout has handed it to the OS, or failed to (a pipe whose reader has gone). */
const outHandedOver = (line: string): Promise<void> =>
  new Promise((resolve, reject) => {
    process.stdout.write(`${line}\n`, (e) => (e ? reject(e) : resolve()));
  });

/** Runs one admin command; returns the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // Asked for, the usage is the answer (stdout, exit 0): before the configuration, which need not be valid for it.
  if (command === 'help' || argv.includes('--help') || argv.includes('-h')) {
    out(USAGE);
    return 0;
  }
  try {
    const config = loadConfig();
    if (command === 'migrate') {
      if (rest.length > 0) throw new CliUsageError(`migrate takes no arguments\n${USAGE}`);
      let result: { database_created: boolean; migrations_applied: string[] };
      try {
        const created = await ensureDatabase(config.database.url);
        result = { database_created: created, migrations_applied: await runMigrations(config.database.url) };
      } catch (e) {
        // Said as the other commands say it, rather than as the driver's bare "timeout expired".
        if (isDatabaseUnavailableError(e))
          throw new Error(`Postgres is unreachable: ${(e as Error).message}`);
        throw e;
      }
      out(JSON.stringify(result));
      return 0;
    }
    if (command === 'audit') {
      // Needs Redis only, not the Nest application.
      await auditCommand(config, rest, outHandedOver);
      return 0;
    }
    // A Map, not an object literal: 'constructor' or '__proto__' would find what every object inherits.
    const handlers = new Map<string, typeof apiKeysCommand>([
      ['api-keys', apiKeysCommand],
      ['secrets', secretsCommand],
      ['rotation', rotationCommand],
    ]);
    const handler = command === undefined ? undefined : handlers.get(command);
    // Said as such, like an unknown option: the list alone does not tell a typo from a command this version lacks.
    if (!handler)
      throw new CliUsageError(command === undefined ? USAGE : `unknown command '${command}'\n${USAGE}`);
    // Opened by the command once its arguments are checked: a mistake in them is reported as such, at once,
    // also while Postgres is unreachable or slow to answer.
    let app: INestApplicationContext | undefined;
    const open = async (): Promise<INestApplicationContext> => {
      app ??= await NestFactory.createApplicationContext(CliModule, {
        logger: ['error'],
        abortOnError: false,
      });
      // Every such command needs Postgres now; the services would otherwise keep retrying in the background.
      app.get(DatabaseConnector).assertConnected();
      return app;
    };
    try {
      await handler(open, rest, out);
    } finally {
      await app?.close();
    }
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof CliUsageError || e instanceof DomainError) {
      process.stderr.write(`${e.message}\n`);
    } else if (isArgumentError(e)) {
      // An unknown option, or one without its value: said with the commands and their options.
      process.stderr.write(`${e.message}\n${USAGE}\n`);
    } else {
      const hint =
        command !== 'migrate' && notMigrated(e) ? ' (the database is not migrated: run `migrate` first)' : '';
      process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}${hint}\n`);
    }
    return 1;
  }
}

/**
 * Whether `e` means the database lacks what `migrate` makes: the database itself (3D000), a table (42P01) or a
 * column (42703) of a newer schema. The service's processes wait for it; a command says what to run.
 */
function notMigrated(e: unknown): boolean {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  if (code === '3D000' || code === '42P01' || code === '42703') return true;
  return typeof message === 'string' && /database "[^"]*" does not exist/.test(message);
}

/** An error of node:util's parseArgs about the arguments themselves (ERR_PARSE_ARGS_*). */
function isArgumentError(e: unknown): e is { message: string } {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_') && typeof message === 'string';
}

/**
 * Exits once stdout and stderr have handed everything written to them to the OS. Into a pipe they write
 * asynchronously, and `process.exit()` drops what the reader has not taken yet: a long `api-keys list` read by a
 * script would end part-way with exit code 0. A reader that has gone (`| head -1`) ends the wait instead.
 */
function exitOnceWritten(code: number): void {
  let waiting = 2;
  const done = (): void => {
    if (--waiting === 0) process.exit(code);
  };
  for (const stream of [process.stdout, process.stderr]) {
    // A closed pipe: what is left cannot be written, and is no one's to read (the write's callback follows).
    stream.on('error', () => undefined);
    // Called once everything written before it has been handed over (or has failed).
    stream.write('', () => done());
  }
}

if (require.main === module) {
  void runCli(process.argv.slice(2)).then(exitOnceWritten);
}
