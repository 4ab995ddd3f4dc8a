import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/**
 * A loopback port nothing listens on: one the system just gave out and took back, so a connection to it is refused
 * and a server of the test (a process it starts) can listen on it.
 */
export async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
