import type { Actor } from '@app/audit';

/** Who is asking, for which project, under which request id: passed to every use case. */
export interface RequestContext {
  projectId: string;
  actor: Actor;
  requestId: string | null;
}
