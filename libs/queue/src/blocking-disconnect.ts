import { RedisConnection } from 'bullmq';
import { Cluster, type Redis } from 'ioredis';
import { closeHandler } from 'ioredis/built/redis/event_handler';

const ENDS = Symbol('endsReconnectingClient');

/** What BullMQ 5's RedisConnection `disconnect` reads of itself. */
interface Disconnecting {
  client: Promise<Redis>;
  disconnect: (this: Disconnecting, wait?: boolean) => Promise<void>;
}

/**
 * BullMQ 5 interrupts a worker's blocking read, when the worker closes or pauses, by disconnecting the client it
 * reads on and waiting for that client's `end`. ioredis 5 never emits it for a client waiting to reconnect (its
 * connection lost, the retry timer running): `disconnect()` clears the timer and closes a connection that has
 * closed already, and the client stays `reconnecting` for good (redis/ioredis#1247, taskforcesh/bullmq#4656).
 * So a worker whose blocking client was still waiting out its retry delay when it closed (Redis back after an
 * outage, the client not yet reconnected) never finished closing, and the shutdown ran into its deadline (exit 1).
 * Such a client is now ended at once, as ioredis ends one that never connected: what it holds (the interrupted
 * read) fails as on a closed connection, and `end` is emitted. Every other case is left to BullMQ; a Cluster client
 * has its own rule (`endClusterOnDisconnect`). Idempotent.
 */
export function endReconnectingBlockingClient(proto: object = RedisConnection.prototype): void {
  const p = proto as Disconnecting & { [ENDS]?: true };
  if (p[ENDS]) return;
  const disconnect = p.disconnect;
  p.disconnect = async function (this: Disconnecting, wait = true) {
    const client = await this.client;
    if (!wait || client instanceof Cluster || client.status !== 'reconnecting')
      return disconnect.call(this, wait);
    client.disconnect(); // clears the retry timer, and marks the close as wanted: no new attempt
    closeHandler(client)(); // the close that will not come: `close`, then `end`
  };
  p[ENDS] = true;
}
