import pg from 'pg';

/** The message of the error a query fails with when Postgres does not answer it in time. */
export const NO_ANSWER_MESSAGE = 'Postgres did not answer';

type Query = (...args: unknown[]) => unknown;

/** How long a closing connection waits for Postgres to close its side before it is dropped. */
export const END_WAIT_MS = 2000;

/** The socket under a node-postgres client (not part of its typed API, but stable across its versions). */
function streamOf(client: pg.Client): { destroy(e?: Error): void } | undefined {
  return (client as unknown as { connection?: { stream?: { destroy(e?: Error): void } } }).connection?.stream;
}

/**
 * Drops the client's connection if it has not ended `ms` after now. Call as its `end()` begins: a graceful end
 * waits for Postgres to close its side, which a server that hangs (stopped, cut off) never does, and the pool's
 * close (hence the process's shutdown) would wait with it.
 */
export function dropUnlessEndedWithin(client: pg.Client, ms: number): void {
  const timer = setTimeout(() => streamOf(client)?.destroy(), ms);
  timer.unref();
  client.once('end', () => clearTimeout(timer));
}

/** What a Postgres error response carries: a five-character SQLSTATE (a socket error's code is longer). */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Asks Postgres, on a connection the pool has just opened and before the pool hands it out (pg-pool's `onConnect`
 * hook), to check every `intervalMs` that the client of a running statement is still there, and to cancel the
 * statement otherwise: a rotation waiting on a row lock when its process was killed is then rolled back, instead
 * of committing later for nobody. A server that cannot (before Postgres 14, or a platform without the check)
 * refuses the SET with an error of its own, and the connection goes on without it: set in the session rather than
 * as a startup option, which such a server would refuse the whole connection for.
 *
 * A server that logs the connection in and then does not answer (a Postgres that hangs behind a pooler that
 * answers the login itself, a backend killed right after it) gets `withinMs`, like the login itself: then the
 * connection is dropped and the promise rejects, so the pool never hands it out and the caller gets its error
 * (503). This runs inside the pool's hook, once the pool listens for the client's errors: run earlier, from the
 * client's own connect, a connection dropped meanwhile raised an error nobody listened for, and the process died.
 */
export async function checkClientConnection(
  client: pg.Client,
  intervalMs: number,
  withinMs: number,
): Promise<void> {
  const timer = setTimeout(
    () =>
      streamOf(client)?.destroy(
        new Error(`${NO_ANSWER_MESSAGE} to the session setup within ${withinMs} ms; connection dropped`),
      ),
    withinMs,
  );
  try {
    await client.query(`SET client_connection_check_interval = ${Math.trunc(intervalMs)}`);
  } catch (e) {
    // Refused by the server: go on without the check. Anything else is the connection failing: not handed out.
    if (!SQLSTATE.test(String((e as { code?: unknown }).code))) throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A node-postgres client class whose connection is dropped when Postgres leaves a query unanswered for
 * `deadlineMs`: the query (and any queued behind it) fails, and the pool replaces the connection.
 *
 * It is the last resort against a server that hangs (stopped, or cut off without a reset) while a query is in
 * flight, which would otherwise hold the request and its pooled connection until TCP gives up, many minutes
 * later. Slow statements are bounded by Postgres itself first (`statement_timeout`, which rolls back cleanly), so
 * the deadline is set above it and only fires when the server does not answer at all. node-postgres' own
 * `query_timeout` is not used: it fails the query but keeps the connection, whose next query (a ROLLBACK, or
 * another request's) then waits behind the unanswered one, or is dropped from the queue if it times out too,
 * leaving a transaction open for whoever takes the connection next.
 */
export function clientWithAnswerDeadline(deadlineMs: number): typeof pg.Client {
  return class ClientWithAnswerDeadline extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      const query = this.query.bind(this) as Query;
      // Only the promise form is used (TypeORM awaits every query); other forms pass through unchanged.
      (this as { query: Query }).query = (...args: unknown[]) => {
        const result = query(...args);
        if (!(result instanceof Promise)) return result;
        const timer = setTimeout(() => {
          streamOf(this)?.destroy(
            new Error(`${NO_ANSWER_MESSAGE} within ${deadlineMs} ms; connection dropped`),
          );
        }, deadlineMs);
        timer.unref(); // the connection itself keeps the process up while it is needed
        const settle = () => clearTimeout(timer);
        result.then(settle, settle);
        return result;
      };
      // Closing the pool (at shutdown) ends every connection: bounded too, see dropUnlessEndedWithin.
      const end = this.end.bind(this) as Query;
      (this as { end: Query }).end = (...args: unknown[]) => {
        dropUnlessEndedWithin(this, END_WAIT_MS);
        return end(...args);
      };
    }
  };
}
