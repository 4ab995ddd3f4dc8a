import type { Socket } from 'node:net';
import { AbstractConnector, Redis } from 'ioredis';

const RELEASES = Symbol('releasesTimersOnClose');

/** What ioredis 5's `setSocketTimeout` reads and writes of its client. */
interface SocketTimeoutHost {
  stream?: Socket;
  socketTimeoutTimer?: ReturnType<typeof setTimeout>;
  setSocketTimeout: (this: SocketTimeoutHost) => void;
}

/** What ioredis 5's connector `disconnect` reads of itself. */
interface DisconnectingConnector {
  stream?: Socket;
  connecting: boolean;
  disconnect: (this: DisconnectingConnector) => void;
}

/**
 * ioredis 5 (BullMQ pins 5.11) leaves two timers running when a connection closes, each holding the process open
 * after every client is closed; ioredis 6 clears the first on close (redis/ioredis#2148). Idempotent.
 *
 * - The socket timeout armed by a command in flight (REDIS_SOCKET_TIMEOUT_MS, 20 s) is cleared only by a byte
 *   arriving on that connection. A connection closed with a command pending (a worker's blocking read for its next
 *   job at shutdown, a command whose answer was lost with its connection, the SELECT of a connection closed as it
 *   opened) kept it, and once it ran it destroyed whatever connection the client then had, a reconnected one that
 *   answers included. It is now cleared when the connection it was armed on closes.
 * - `disconnect()` of a client whose connection has already gone (reconnecting) armed a timer of
 *   `disconnectTimeout` (2 s) to destroy that connection, cleared only by a close event that had already been.
 *   Nothing is left to destroy then, and no timer is armed.
 */
export function releaseTimersOnClose(
  client: object = Redis.prototype,
  connector: object = AbstractConnector.prototype,
): void {
  const c = client as SocketTimeoutHost & { [RELEASES]?: true };
  if (!c[RELEASES]) {
    const setSocketTimeout = c.setSocketTimeout;
    c.setSocketTimeout = function (this: SocketTimeoutHost) {
      setSocketTimeout.call(this);
      const { stream, socketTimeoutTimer: timer } = this;
      if (!stream || timer === undefined) return;
      const release = () => {
        clearTimeout(timer);
        if (this.socketTimeoutTimer === timer) this.socketTimeoutTimer = undefined;
      };
      if (stream.closed) return release();
      stream.once('close', release);
      // A byte has come: ioredis has cleared this timer itself (and armed the next one if commands are pending).
      stream.once('data', () => stream.removeListener('close', release));
    };
    c[RELEASES] = true;
  }
  const k = connector as DisconnectingConnector & { [RELEASES]?: true };
  if (!k[RELEASES]) {
    const disconnect = k.disconnect;
    k.disconnect = function (this: DisconnectingConnector) {
      if (!this.stream?.destroyed) return disconnect.call(this);
      this.connecting = false;
    };
    k[RELEASES] = true;
  }
}
