import pg from 'pg';

/** The message of the error a query fails with when Postgres does not answer it in time. */
export const NO_ANSWER_MESSAGE = 'Postgres did not answer';

type Query = (...args: unknown[]) => unknown;

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
          const stream = (this as unknown as { connection?: { stream?: { destroy(e: Error): void } } })
            .connection?.stream;
          stream?.destroy(new Error(`${NO_ANSWER_MESSAGE} within ${deadlineMs} ms; connection dropped`));
        }, deadlineMs);
        timer.unref(); // the connection itself keeps the process up while it is needed
        const settle = () => clearTimeout(timer);
        result.then(settle, settle);
        return result;
      };
    }
  };
}
