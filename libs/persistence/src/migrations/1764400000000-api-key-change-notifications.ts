import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every change to an API key row (revocation, deletion, a truncate) is announced on the `api_key_changed`
 * channel at commit, so API replicas can cache key lookups and still refuse a revoked key at once. The
 * payload is the key's hash (empty after a truncate: forget every key); never the key itself.
 */
export class ApiKeyChangeNotifications1764400000000 implements MigrationInterface {
  name = 'ApiKeyChangeNotifications1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_LEVEL = 'STATEMENT' THEN
          PERFORM pg_notify('api_key_changed', '');
        ELSE
          PERFORM pg_notify('api_key_changed', OLD.key_hash);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
      FOR EACH ROW EXECUTE FUNCTION api_key_changed()`);
    await q.query(`
      CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys
      FOR EACH STATEMENT EXECUTE FUNCTION api_key_changed()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER api_keys_truncated ON api_keys');
    await q.query('DROP TRIGGER api_keys_changed ON api_keys');
    await q.query('DROP FUNCTION api_key_changed()');
  }
}
