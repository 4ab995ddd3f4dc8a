import type { ChildProcess } from 'node:child_process';
import type { Server, Socket } from 'node:net';

/**
 * Runs once, after the last test file of both projects. The files run one after the other inside Jest's own
 * process (`maxWorkers: 1`), so a connection, server, child process or timer that a file leaves open would keep that
 * process alive after the run: Jest would print its results and then never exit. Jest exits anyway (`forceExit`);
 * this names what was left open, so that the file that leaked it can be found and mended.
 */
export default async function globalTeardown(): Promise<void> {
  // What a file closed at its very end may still be on its way out: given two seconds to go.
  const deadline = Date.now() + 2000;
  let left = leftOpen();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = leftOpen();
  }
  if (left.length > 0) {
    process.stderr.write(
      `\nLeft open after the last test file (Jest exits anyway, but a test leaked them):\n  ${left.join('\n  ')}\n`,
    );
  }
}

/** The handles and timers still holding the process open, each described so that its test can be recognised. */
function leftOpen(): string[] {
  // Undocumented but stable since Node 0.x; what `--detectOpenHandles` would find, without its cost on every test.
  const getHandles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
  const handles = getHandles ? getHandles.call(process) : [];
  const described = handles.map(describeHandle).filter((d): d is string => d !== undefined);
  const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  if (timers > 0) described.push(`${timers} timer(s) still due`);
  return described;
}

function describeHandle(handle: unknown): string | undefined {
  const kind = (handle as object | null)?.constructor?.name ?? typeof handle;
  if (kind === 'Socket' || kind === 'TLSSocket') {
    const s = handle as Socket & { _isStdio?: boolean; fd?: number };
    // Jest's own stdout and stderr.
    if (s._isStdio || s.fd === 0 || s.fd === 1 || s.fd === 2) return undefined;
    if (s.destroyed) return undefined;
    return `${kind} ${s.localAddress}:${s.localPort} -> ${s.remoteAddress}:${s.remotePort}`;
  }
  if (kind === 'Server') {
    const address = (handle as Server).address();
    return `Server listening on ${typeof address === 'string' ? address : `${address?.address}:${address?.port}`}`;
  }
  if (kind === 'ChildProcess') {
    const child = handle as ChildProcess;
    return `ChildProcess ${child.pid}: ${child.spawnargs.join(' ').slice(0, 200)}`;
  }
  return kind;
}
