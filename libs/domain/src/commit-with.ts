import type { Repositories } from '@app/persistence';

/**
 * Work that commits together with a change: given the change's transaction and its result, it writes the
 * caller's own record of that result (the first response of an `Idempotency-Key`), so that the change and the
 * record are both there or neither is. A use case that takes one runs the change in a transaction for it;
 * without one, the change commits as it always does (often a single statement).
 */
export type CommitWith<T> = (tx: Repositories, result: T) => Promise<void>;
