import { randomUUID } from 'node:crypto';
import {
  createDataSource,
  Repositories,
  StatementRunner,
  type DataSource,
  type NamedStatement,
} from '@app/persistence';
import { TEST_DATABASE_URL } from './support/test-env';

/**
 * The hot reads' named prepared statements, on the real Postgres: each data source here has one connection, so
 * `pg_prepared_statements` (which lists the statements of the session that reads it) shows what the reads left on
 * the connection they used.
 */
describe('prepared statements of the hot reads', () => {
  const sources: DataSource[] = [];

  /** A data source of one connection on the migrated test database, with the API's client (statement deadline). */
  async function oneConnection(): Promise<DataSource> {
    const ds = createDataSource(TEST_DATABASE_URL, 1, 15_000);
    await ds.initialize();
    sources.push(ds);
    return ds;
  }

  const preparedOn = async (ds: DataSource): Promise<string[]> =>
    (await ds.query<{ name: string }[]>('SELECT name FROM pg_prepared_statements ORDER BY name')).map(
      (r) => r.name,
    );

  afterAll(async () => {
    for (const ds of sources) await ds.destroy();
  });

  it('prepares the webhook and API key reads on the pool, once per connection', async () => {
    const ds = await oneConnection();
    const repos = new Repositories(ds.manager, false, { prepared: true });
    const projectId = randomUUID();
    for (let i = 0; i < 3; i++) {
      expect(await repos.webhooks.findLive(projectId, 'wh_01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeNull();
      expect(await repos.webhooks.listLive(projectId)).toEqual([]);
      expect(await repos.apiKeys.findActiveByHash('no such hash')).toBeNull();
    }
    // Each under its name and a digest of its text.
    expect(await preparedOn(ds)).toEqual([
      expect.stringMatching(/^api_key_find_active_[0-9a-f]{12}$/),
      expect.stringMatching(/^webhook_find_live_[0-9a-f]{12}$/),
      expect.stringMatching(/^webhook_list_live_[0-9a-f]{12}$/),
    ]);
  });

  it('sends plain statements with DATABASE_PREPARED_STATEMENTS=false, and in a transaction', async () => {
    const off = await oneConnection();
    const projectId = randomUUID();
    await new Repositories(off.manager, false, { prepared: false }).webhooks.findLive(projectId, 'wh_x');
    expect(await preparedOn(off)).toEqual([]);

    const inTx = await oneConnection();
    await inTx.transaction(async (manager) => {
      const tx = new Repositories(manager, true, { prepared: true });
      expect(await tx.webhooks.listLive(projectId)).toEqual([]);
      expect(await tx.apiKeys.findActiveByHash('no such hash')).toBeNull();
    });
    expect(await preparedOn(inTx)).toEqual([]);
  });

  describe('on a table of its own', () => {
    const table = `prepared_probe_${process.pid}_${Date.now()}`;
    let ds: DataSource;

    beforeAll(async () => {
      ds = await oneConnection();
      await ds.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL)`);
      await ds.query(`INSERT INTO ${table} VALUES (1, 2)`);
    });

    afterAll(async () => {
      await ds.query(`DROP TABLE IF EXISTS ${table}`);
    });

    /** The names Postgres holds `statement` under on the connection. */
    const preparedAs = async (statement: NamedStatement): Promise<string[]> =>
      (await preparedOn(ds)).filter((n) => n.startsWith(`${statement.name}_`));

    it('prepares two texts under one name (two versions of a statement) apart, each answering its own', async () => {
      const runner = new StatementRunner(ds.manager, { prepared: true });
      const ids: NamedStatement = { name: `${table}_one`, text: `SELECT id FROM ${table} WHERE id = $1` };
      const both: NamedStatement = { name: ids.name, text: `SELECT id, v FROM ${table} WHERE id = $1` };
      expect(await runner.rows(ids, [1])).toEqual([{ id: 1 }]);
      expect(await runner.rows(both, [1])).toEqual([{ id: 1, v: 2 }]);
      expect(await runner.rows(ids, [1])).toEqual([{ id: 1 }]);
      expect(await preparedAs(ids)).toHaveLength(2);
    });

    it('prepares a statement again under a new name when a migration changes the type of a column it returns', async () => {
      const statement: NamedStatement = {
        name: `${table}_read`,
        text: `SELECT id, v FROM ${table} WHERE id = $1`,
      };
      const runner = new StatementRunner(ds.manager, { prepared: true });
      expect(await runner.rows(statement, [1])).toEqual([{ id: 1, v: 2 }]);
      const [prepared] = await preparedAs(statement);
      expect(prepared).toMatch(new RegExp(`^${statement.name}_[0-9a-f]{12}$`));

      // Postgres cannot replan the prepared statement behind this: it now returns text where it returned int.
      await ds.query(`ALTER TABLE ${table} ALTER COLUMN v TYPE text`);
      expect(await runner.rows(statement, [1])).toEqual([{ id: 1, v: '2' }]);
      expect(await runner.rows(statement, [1])).toEqual([{ id: 1, v: '2' }]);
      // A runner made later (another set of repositories) uses the new name at once.
      expect(await new StatementRunner(ds.manager, { prepared: true }).rows(statement, [1])).toEqual([
        { id: 1, v: '2' },
      ]);
      expect(await preparedAs(statement)).toEqual([prepared, `${prepared}_1`]);
    });

    it('falls back to plain statements when the server lost a named one, and says so once', async () => {
      const statement: NamedStatement = {
        name: `${table}_lost`,
        text: `SELECT id FROM ${table} WHERE id = $1`,
      };
      const told: unknown[] = [];
      const runner = new StatementRunner(ds.manager, {
        prepared: true,
        onLostStatements: (e) => told.push(e),
      });
      expect(await runner.rows(statement, [1])).toEqual([{ id: 1 }]);
      // What a transaction-mode pooler does to a client: the statement is gone from the session it now talks to.
      const [prepared] = await preparedAs(statement);
      await ds.query(`DEALLOCATE ${prepared}`);
      expect(await runner.rows(statement, [1])).toEqual([{ id: 1 }]);
      expect(await runner.rows(statement, [1])).toEqual([{ id: 1 }]);
      expect(told).toHaveLength(1);
      expect(String((told[0] as Error).message)).toMatch(/does not exist/);
    });
  });
});
