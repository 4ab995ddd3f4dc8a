import type { Database, Repositories } from '@app/persistence';

/**
 * Work that commits together with a change: given the change's transaction and its result, it writes the
 * caller's own record of that result (the first response of an `Idempotency-Key`), so that the change and the
 * record are both there or neither is. A use case that takes one runs the change in a transaction for it;
 * without one, the change commits as it always does (often a single statement).
 */
export type CommitWith<T> = (tx: Repositories, result: T) => Promise<void>;

/**
 * Runs `change` on its own, or, given `commitWith`, in a transaction that also runs `commitWith` on the change's
 * result. `resultOf` turns what `change` returned into that result, or into null when it changed nothing (then
 * there is nothing to commit with). Resolves with what `change` returned.
 */
export async function commitChange<R, T>(
  db: Database,
  change: (repos: Repositories) => Promise<R>,
  commitWith: CommitWith<T> | undefined,
  resultOf: (changed: R) => T | null,
): Promise<R> {
  if (!commitWith) return change(db.repos);
  return db.transaction(async (tx) => {
    const changed = await change(tx);
    const result = resultOf(changed);
    if (result !== null) await commitWith(tx, result);
    return changed;
  });
}
