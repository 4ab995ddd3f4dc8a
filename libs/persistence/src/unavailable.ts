import { NO_ANSWER_MESSAGE } from './answer-deadline';

// Errors that mean "Postgres cannot be reached right now" rather than "this query is wrong". The HTTP layer
// answers them with 503 and a Retry-After; the pool reconnects by itself once Postgres is back.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  // No route to the server's network, or the local interface is down: as unreachable as a refused connection.
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
]);
// SQLSTATE class 08 (connection exception), 57P01..57P03 (shutdown, cannot connect now), 53300 (too many
// connections), 57014 (statement cancelled: its statement_timeout ran out, or an operator cancelled it), 25P03
// (session ended idle in a transaction, see dataSourceOptions) and 25006 (a write refused as read-only: the service
// never opens a read-only transaction itself, so the server is a standby, e.g. a former primary during a failover).
const SQLSTATE_UNAVAILABLE = /^(08...|57P0[123]|53300|57014|25P03|25006)$/;
const MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  // A single client (the migrations') whose connection got no answer within its connect timeout.
  'timeout expired',
  'Client has encountered a connection error',
  'Connection is not established',
  'the database system is',
  // TypeORM before the data source has connected (see DatabaseConnector).
  'Driver not Connected',
  // TypeORM after the connection of a transaction failed under it (Postgres ended the session, e.g. one left idle
  // in a transaction): it releases the query runner, and the transaction's next statement fails this way.
  'Database connection provided by a query runner was already released',
  'Query runner already released',
  NO_ANSWER_MESSAGE,
];

// Data sources that have not connected yet (Postgres unreachable since the start, see DatabaseConnector).
const awaitingFirstConnection = new Set<object>();

/** Called by DatabaseConnector: whether `dataSource` still waits for its first connection. */
export function markAwaitingConnection(dataSource: object, awaiting: boolean): void {
  if (awaiting) awaitingFirstConnection.add(dataSource);
  else awaitingFirstConnection.delete(dataSource);
}

/** Whether `err` (a pg or TypeORM error) means the database is unreachable. */
export function isDatabaseUnavailableError(err: unknown): boolean {
  // Entity metadata is built when the data source connects, so before that a repository call fails this way.
  // Only then: afterwards the same error is a programming mistake, a 500.
  if (
    awaitingFirstConnection.size > 0 &&
    (err as { name?: unknown } | null)?.name === 'EntityMetadataNotFoundError'
  )
    return true;
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const o = e as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown };
    if (typeof o.code === 'string' && (NETWORK_CODES.has(o.code) || SQLSTATE_UNAVAILABLE.test(o.code)))
      return true;
    if (typeof o.message === 'string' && MESSAGES.some((m) => (o.message as string).includes(m))) return true;
    e = o.driverError ?? o.cause;
  }
  return false;
}
