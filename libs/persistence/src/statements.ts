import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';

/**
 * A statement of a hot read path. Outside a transaction it is sent as a named prepared statement: Postgres parses
 * and plans it once per connection and then only binds and runs it, which halves the Postgres CPU of a
 * `GET /v1/webhooks/{id}` (measured: about 200 against 100 µs per request). The column list is explicit, so a
 * migration that adds a column leaves the prepared statements valid.
 */
export interface NamedStatement {
  /** Unique among the statements (Postgres knows it with a digest of the text appended). */
  readonly name: string;
  readonly text: string;
}

/** What a pool-bound read does with its statements (`DATABASE_PREPARED_STATEMENTS`). */
export interface StatementOptions {
  prepared: boolean;
  /** Told once when the connections lose named statements between statements (a transaction-mode pooler). */
  onLostStatements?: (error: unknown) => void;
}

/** The SQLSTATE of a driver error (TypeORM wraps node-postgres' error and copies its `code`). */
export function sqlState(e: unknown): string | undefined {
  const err = e as { code?: unknown; driverError?: { code?: unknown } } | undefined;
  const code = err?.driverError?.code ?? err?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A prepared statement whose plan a migration outdated in a way Postgres cannot replan behind it: a column it
 * returns changed type (`0A000`, "cached plan must not change result type").
 */
function outdatedPlan(e: unknown): boolean {
  return (
    sqlState(e) === '0A000' && /cached plan must not change result type/i.test(String((e as Error).message))
  );
}

/**
 * Named statements that the server does not hold as the client believes (`26000` prepared statement does not
 * exist, `42P05` already exists): the connection's statements are shared or lost between statements, as behind a
 * transaction-mode PgBouncer before 1.21.
 */
function lostStatement(e: unknown): boolean {
  const state = sqlState(e);
  return state === '26000' || state === '42P05';
}

/**
 * The name a statement is prepared under: its own name and a digest of its text, so that processes of two
 * versions whose texts differ never take each other's statement for their own on a server connection they share
 * (through a pooler).
 */
const prefixes = new Map<string, string>();

/**
 * Generation of each statement's name in this process: a statement outdated by a migration is prepared again
 * under a new name on every connection (the outdated one stays unused on the connections that hold it).
 */
const generations = new Map<string, number>();

function prefixOf(statement: NamedStatement): string {
  const key = `${statement.name}\n${statement.text}`;
  let prefix = prefixes.get(key);
  if (prefix === undefined) {
    prefix = `${statement.name}_${createHash('sha256').update(statement.text).digest('hex').slice(0, 12)}`;
    prefixes.set(key, prefix);
  }
  return prefix;
}

function nameOf(statement: NamedStatement): string {
  const prefix = prefixOf(statement);
  const generation = generations.get(prefix) ?? 0;
  return generation === 0 ? prefix : `${prefix}_${generation}`;
}

/** Runs the statements of one set of repositories: named when pool-bound and enabled, plain otherwise. */
export class StatementRunner {
  private lostToldOnce = false;

  constructor(
    private readonly manager: EntityManager,
    private readonly options: StatementOptions,
  ) {}

  /** The rows of `statement` with `params`. */
  async rows<T = Record<string, unknown>>(statement: NamedStatement, params: unknown[]): Promise<T[]> {
    // In a transaction a failed statement aborts it, so nothing could be retried: plain statements there.
    if (!this.options.prepared || this.manager.queryRunner !== undefined)
      return this.manager.query(statement.text, params);
    const named = (name: string): Promise<T[]> =>
      // node-postgres takes a query config in place of the text; TypeORM hands it on unchanged.
      this.manager.query({ name, text: statement.text } as unknown as string, params);
    const name = nameOf(statement);
    try {
      return await named(name);
    } catch (e) {
      if (outdatedPlan(e)) {
        if (nameOf(statement) === name) {
          const prefix = prefixOf(statement);
          generations.set(prefix, (generations.get(prefix) ?? 0) + 1);
        }
        return named(nameOf(statement));
      }
      if (lostStatement(e)) {
        if (!this.lostToldOnce) {
          this.lostToldOnce = true;
          this.options.onLostStatements?.(e);
        }
        return this.manager.query(statement.text, params);
      }
      throw e;
    }
  }
}
