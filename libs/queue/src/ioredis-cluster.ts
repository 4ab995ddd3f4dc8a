import { Cluster } from 'ioredis';

const ENDS = Symbol('endsOnDisconnect');

/** What ioredis 5's Cluster `disconnect` reads and calls of itself. */
interface DisconnectingCluster {
  status: string;
  manuallyClosing: boolean;
  nodes(role?: 'all'): unknown[];
  setStatus(status: string): void;
  handleCloseEvent(): void;
  disconnect: (this: DisconnectingCluster, reconnect?: boolean) => void;
}

/**
 * ioredis 5's Cluster `disconnect()` ends the client once its last node connection has ended. A client that holds
 * none (waiting to reconnect, or connecting anew after a failover or an outage) stayed `disconnecting` for ever:
 * no `close`, no `end`. BullMQ waits for that `end` when a worker closes its blocking connection, so a worker whose
 * blocking client was reconnecting at shutdown never finished closing (exit 1 at the deadline). Such a client now
 * closes at once, as one not yet connected does: it ends (or, with `reconnect`, reconnects). Idempotent.
 */
export function endClusterOnDisconnect(proto: object = Cluster.prototype): void {
  const p = proto as DisconnectingCluster & { [ENDS]?: true };
  if (p[ENDS]) return;
  const disconnect = p.disconnect;
  p.disconnect = function (this: DisconnectingCluster, reconnect = false) {
    const idle = this.status !== 'wait' && this.status !== 'end' && this.nodes('all').length === 0;
    disconnect.call(this, reconnect);
    if (!idle) return;
    this.setStatus('close');
    this.handleCloseEvent();
  };
  p[ENDS] = true;
}
