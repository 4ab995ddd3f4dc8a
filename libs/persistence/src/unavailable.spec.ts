import {
  EntityMetadataNotFoundError,
  QueryFailedError,
  QueryRunnerAlreadyReleasedError,
  QueryRunnerProviderAlreadyReleasedError,
  TypeORMError,
} from 'typeorm';
import { isDatabaseUnavailableError, markAwaitingConnection } from './unavailable';

describe('isDatabaseUnavailableError', () => {
  const withCode = (code: string) => Object.assign(new Error('x'), { code });

  it.each([
    ['a refused connection', withCode('ECONNREFUSED')],
    ['a connection with no route to the network', withCode('ENETUNREACH')],
    ['a connection over a network interface that is down', withCode('ENETDOWN')],
    ['a connection to a host that is down', withCode('EHOSTDOWN')],
    ['SQLSTATE 08006 (connection failure)', withCode('08006')],
    ['SQLSTATE 57P01 (admin shutdown)', withCode('57P01')],
    ['too many connections', withCode('53300')],
    ['a statement cancelled by its statement_timeout', withCode('57014')],
    ['a session ended idle in a transaction', withCode('25P03')],
    ['a write refused by a standby (read-only transaction)', withCode('25006')],
    ['a query left unanswered', new Error('Postgres did not answer within 20000 ms; connection dropped')],
    ['a transaction whose connection was ended under it', new QueryRunnerProviderAlreadyReleasedError()],
    ['a query builder on a query runner released under it', new QueryRunnerAlreadyReleasedError()],
    ['a pool connect timeout', new Error('timeout exceeded when trying to connect')],
    ['a query before the data source connected', new TypeORMError('Driver not Connected')],
    [
      'a wrapped driver error',
      Object.assign(new Error('query failed'), { driverError: withCode('ECONNRESET') }),
    ],
  ])('counts %s', (_what, err) => expect(isDatabaseUnavailableError(err)).toBe(true));

  it.each([
    ['a unique violation', new QueryFailedError('INSERT', [], withCode('23505'))],
    ['a syntax error', withCode('42601')],
    ['a plain error', new Error('boom')],
    ['nothing', undefined],
  ])('does not count %s', (_what, err) => expect(isDatabaseUnavailableError(err)).toBe(false));

  it('counts missing entity metadata only while a data source waits for its first connection', () => {
    const err = new EntityMetadataNotFoundError('WebhookEntity');
    expect(isDatabaseUnavailableError(err)).toBe(false);
    const dataSource = {};
    markAwaitingConnection(dataSource, true);
    try {
      expect(isDatabaseUnavailableError(err)).toBe(true);
    } finally {
      markAwaitingConnection(dataSource, false);
    }
    expect(isDatabaseUnavailableError(err)).toBe(false);
  });
});
