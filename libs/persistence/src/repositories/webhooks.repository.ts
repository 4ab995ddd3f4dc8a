import type { EntityManager } from 'typeorm';
import { WebhookEntity } from '../entities/webhook.entity';

/** Fields of a webhook that an update may change. */
export type WebhookChanges = Partial<
  Pick<WebhookEntity, 'url' | 'description' | 'subscribedEvents' | 'enabled'>
>;

/** Webhooks. "Live" means not deleted; deleted webhooks are invisible to every read here. */
export class WebhooksRepository {
  constructor(private readonly manager: EntityManager) {}

  private get repo() {
    return this.manager.getRepository(WebhookEntity);
  }

  /**
   * Serialises creates of one project until the transaction ends, so that counting live webhooks and
   * inserting one is atomic however many creates race.
   */
  async lockProjectForCreate(projectId: string): Promise<void> {
    await this.manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7301))', [projectId]);
  }

  async countLive(projectId: string): Promise<number> {
    const rows: { n: number }[] = await this.manager.query(
      'SELECT count(*)::int AS n FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL',
      [projectId],
    );
    return rows[0].n;
  }

  async insert(row: WebhookEntity): Promise<void> {
    await this.repo.insert(row);
  }

  async findLive(projectId: string, id: string): Promise<WebhookEntity | null> {
    return this.repo
      .createQueryBuilder('w')
      .where('w.id = :id AND w.project_id = :projectId AND w.deleted_at IS NULL', { id, projectId })
      .getOne();
  }

  /** Like {@link findLive}, and row-locks the webhook until the transaction ends (serialises rotations). */
  async findLiveForUpdate(projectId: string, id: string): Promise<WebhookEntity | null> {
    return this.repo
      .createQueryBuilder('w')
      .setLock('pessimistic_write')
      .where('w.id = :id AND w.project_id = :projectId AND w.deleted_at IS NULL', { id, projectId })
      .getOne();
  }

  /** Live webhooks of a project, oldest first. */
  async listLive(projectId: string): Promise<WebhookEntity[]> {
    return this.repo
      .createQueryBuilder('w')
      .where('w.project_id = :projectId AND w.deleted_at IS NULL', { projectId })
      .orderBy('w.created_at', 'ASC')
      .addOrderBy('w.id', 'ASC')
      .getMany();
  }

  /** The project of each of the given webhooks (deleted ones included). */
  async projectsOf(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows: { id: string; project_id: string }[] = await this.manager.query(
      'SELECT id, project_id FROM webhooks WHERE id = ANY($1)',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.project_id]));
  }

  async update(id: string, changes: WebhookChanges, updatedAt: Date): Promise<void> {
    await this.repo.update({ id }, { ...changes, updatedAt });
  }

  async touch(id: string, updatedAt: Date): Promise<void> {
    await this.repo.update({ id }, { updatedAt });
  }

  async softDelete(id: string, at: Date): Promise<void> {
    await this.repo.update({ id }, { deletedAt: at, updatedAt: at, enabled: false });
  }
}
