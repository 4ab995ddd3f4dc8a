import { Cluster } from 'ioredis';

const ENDS = Symbol('endsOnDisconnect');
const STAYS_ENDED = Symbol('staysEnded');

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

/** What ioredis 5's Cluster `setStatus` reads. */
interface StatusCluster {
  status: string;
  setStatus: (this: StatusCluster, status: string) => void;
}

/**
 * In ioredis 5 a Cluster client goes back to `close` when its pool of node connections empties, also once it has
 * ended: a node connection whose socket closes after the others' (one to a node that had hung or failed over)
 * empties the pool again after the client's `end`, and the client is `close` again, for good (nothing ends it a
 * second time). BullMQ waits for `ready` or `end` of a client that is not `end`, so a worker whose blocking client
 * had ended that way (closing it while Redis Cluster recovered from a shard that hung) never finished its main loop,
 * and the shutdown ran into its deadline (exit 1). An ended client now stays ended until it is connected again.
 * Idempotent.
 */
export function keepClusterEnded(proto: object = Cluster.prototype): void {
  const p = proto as StatusCluster & { [STAYS_ENDED]?: true };
  if (p[STAYS_ENDED]) return;
  const setStatus = p.setStatus;
  p.setStatus = function (this: StatusCluster, status: string) {
    if (status === 'close' && this.status === 'end') return;
    setStatus.call(this, status);
  };
  p[STAYS_ENDED] = true;
}

const SETTLES = Symbol('connectSettles');

/** What ioredis 5's Cluster `connect` reads and calls of itself. */
interface ConnectingCluster {
  status: string;
  connect: (this: ConnectingCluster) => Promise<void>;
  on(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/**
 * ioredis 5's Cluster `connect()` never settles when its ready check fails (the cluster says `cluster_state:fail`,
 * as while a shard has no master): the client disconnects and connects again by itself, and the promise of the
 * first attempt is left pending for ever. BullMQ awaits that promise when it reconnects a worker's blocking client,
 * so a worker that did so during such an outage stopped taking jobs for good (a rotation sweep, the audit relay's
 * or housekeeping's jobs no longer ran), and its shutdown waited out the deadline (exit 1). The promise now also
 * settles when the client is next `ready` (resolved) or `end` (rejected, as on a closed connection); events left
 * over from before the call, which find the client in another state, are ignored. Idempotent.
 */
export function settleClusterConnect(proto: object = Cluster.prototype): void {
  const p = proto as ConnectingCluster & { [SETTLES]?: true };
  if (p[SETTLES]) return;
  const connect = p.connect;
  p.connect = function (this: ConnectingCluster) {
    const attempt = connect.call(this);
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.removeListener('ready', onReady);
        this.removeListener('end', onEnd);
      };
      const onReady = () => {
        if (this.status !== 'ready') return;
        done();
        resolve();
      };
      const onEnd = () => {
        if (this.status !== 'end') return;
        done();
        reject(new Error('Connection is closed.'));
      };
      this.on('ready', onReady);
      this.on('end', onEnd);
      attempt.then(
        () => {
          done();
          resolve();
        },
        (e: unknown) => {
          done();
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  };
  p[SETTLES] = true;
}
