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

/**
 * Asks Postgres, once the client is connected and before anything else runs on it, to check every `intervalMs`
 * that the client of a running statement is still there, and to cancel the statement otherwise: a rotation
 * waiting on a row lock when its process was killed is then rolled back, instead of committing later for nobody.
 * A server that cannot (before Postgres 14, or a platform without the check) refuses the SET, and the connection
 * goes on without it: set in the session rather than as a startup option, which such a server would refuse
 * the whole connection for.
 */
function checkClientConnection(client: pg.Client, intervalMs: number): void {
  type Connect = (callback?: (err?: Error) => void) => Promise<void> | undefined;
  const connect = client.connect.bind(client) as Connect;
  (client as unknown as { connect: Connect }).connect = (callback) => {
    const connected = (connect() as Promise<void>).then(async () => {
      await client
        .query(`SET client_connection_check_interval = ${Math.trunc(intervalMs)}`)
        .catch(() => undefined);
    });
    if (!callback) return connected;
    connected.then(() => callback(), callback);
    return undefined;
  };
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
export function clientWithAnswerDeadline(
  deadlineMs: number,
  session: { clientCheckIntervalMs?: number } = {},
): typeof pg.Client {
  return class ClientWithAnswerDeadline extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      if (session.clientCheckIntervalMs) checkClientConnection(this, session.clientCheckIntervalMs);
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
