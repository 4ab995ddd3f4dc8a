import Redis from 'ioredis';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import {
  AuditStreamSubscriber,
  type AuditEvent,
  TAIL_HEARTBEAT_EVERY_MS,
  TAIL_HEARTBEAT_TTL_MS,
  THROWAWAY_TAIL_GROUP,
  tailHeartbeatKey,
  throwawayTailGroup,
} from '@app/audit';
import type { AppConfig } from '@app/config';
import { createRedis, verifyRedisDatabase } from '@app/queue';
import { CliUsageError } from '../cli-usage.error';
import { refuseRepeatedOptions } from '../repeated-options';

const USAGE = 'usage: audit tail [--group <name> [--consumer <name>]] [--from-start]';
/** What a group or consumer name may be, and the rule as said when one is not. */
const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
const NAME_RULE = 'must be 1 to 100 characters of [A-Za-z0-9_.:-]';
/** Longest wait of one read: bounds how long SIGINT takes to end the tail. */
const BLOCK_MS = 1000;
/** How long the tail waits for Redis at start before it fails (once running, it rides out outages). */
const CONNECT_WAIT_MS = 5000;
/** What the handler throws for each event it can no longer print: the entry stays pending, and nothing is said. */
const OUTPUT_GONE = new Error('the output is closed');

/** Resolves once the client is connected, or rejects after `waitMs`. */
function ready(redis: Redis, waitMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.removeListener('ready', onReady);
      reject(new Error('timed out'));
    }, waitMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/**
 * `audit tail`: a real consumer-group subscriber printing one JSON event per line until SIGINT, SIGTERM or SIGHUP
 * (its terminal closed, an SSH session dropped: by default SIGHUP would kill it and leave its throwaway group on
 * the stream for ever, one more for every such tail).
 * With `--group`, a durable group (several tails share its entries; a restarted tail resumes its own pending
 * ones, as the consumer `<hostname>-tail` or the one `--consumer` names). Without it, a throwaway group of its
 * own that starts at new events (or at the oldest with `--from-start`) and is destroyed on exit; should the tail
 * be killed outright, the worker's daily audit housekeeping destroys it once its heartbeat key has expired.
 */
export async function auditCommand(
  config: AppConfig,
  argv: string[],
  /**
   * Prints one line. An event is acknowledged once this returns, or once the promise it returns resolves: a
   * printer into a pipe resolves when the line has been handed to the OS, and rejects when it cannot be (the
   * reader has gone), which leaves the event pending for the group's next tail.
   */
  out: (line: string) => unknown,
  signals: NodeJS.EventEmitter = process,
): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'tail') throw new CliUsageError(USAGE);
  let values: { group?: string; consumer?: string; 'from-start'?: boolean };
  try {
    let tokens;
    ({ values, tokens } = parseArgs({
      args: rest,
      options: {
        group: { type: 'string' },
        consumer: { type: 'string' },
        'from-start': { type: 'boolean' },
      },
      tokens: true,
    }));
    refuseRepeatedOptions(tokens);
  } catch (e) {
    throw new CliUsageError(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
  }
  if (values.group !== undefined && !NAME.test(values.group)) throw new CliUsageError(`--group ${NAME_RULE}`);
  // Reserved: the worker removes such groups once no running tail renews their heartbeat (see tail-groups.ts).
  if (values.group !== undefined && THROWAWAY_TAIL_GROUP.test(values.group))
    throw new CliUsageError(
      '--group: tail-<uuid> names are reserved for throwaway groups; choose another name',
    );
  if (values.consumer !== undefined && values.group === undefined)
    throw new CliUsageError(
      `--consumer names a consumer of a --group; a throwaway group has only one\n${USAGE}`,
    );
  if (values.consumer !== undefined && !NAME.test(values.consumer))
    throw new CliUsageError(`--consumer ${NAME_RULE}`);
  const ephemeral = values.group === undefined;
  const group = values.group ?? throwawayTailGroup();

  // A connection of its own: the blocking reads hold it. Commands queue while it (re)connects.
  const redis = createRedis(config.redis, {
    connectionName: 'webhook-secrets:audit-tail',
  });
  let lastError: Error | undefined;
  redis.on('error', (e: Error) => (lastError = e));
  try {
    await ready(redis, CONNECT_WAIT_MS);
  } catch {
    redis.disconnect();
    throw new Error(
      `Redis is unavailable (${lastError?.message ?? 'no connection'}); nothing to tail until it answers`,
    );
  }
  try {
    await verifyRedisDatabase(config.redis); // Redis answers: this returns at once, or names the problem
  } catch (e) {
    redis.disconnect();
    throw e;
  }
  const subscriber = new AuditStreamSubscriber(redis, {
    stream: config.audit.stream,
    group,
    // Stable across restarts on one host for a named group, so a restarted tail resumes its pending entries;
    // tails of one group on one host that must not share entries each name their own consumer.
    consumer: ephemeral ? 'tail' : (values.consumer ?? `${hostname()}-tail`),
    startId: values['from-start'] ? '0' : '$',
    blockMs: BLOCK_MS,
    onError: (e) => {
      if (e !== OUTPUT_GONE)
        process.stderr.write(`audit tail: ${e instanceof Error ? e.message : String(e)}\n`);
    },
  });
  let forced: NodeJS.Timeout | undefined;
  const stop = (): void => {
    subscriber.stop();
    // A read waiting on a Redis that is away would never return: give the current read its time, then cut.
    forced ??= setTimeout(() => redis.disconnect(), BLOCK_MS + 1000);
    forced.unref();
  };
  // A throwaway group's heartbeat, set before the group exists and renewed while the tail runs (a renewal that
  // fails while Redis is away is simply skipped): without it the worker takes the group for one a killed tail left.
  // Renewed at once when the connection comes back, too: an outage must not leave it lapsed until the next beat.
  const heartbeat = ephemeral ? tailHeartbeatKey(config.audit.stream, group) : undefined;
  let beatFailed = false;
  const beat = async (): Promise<void> => {
    if (!heartbeat || redis.status !== 'ready') return;
    try {
      await redis.set(heartbeat, '1', 'PX', TAIL_HEARTBEAT_TTL_MS);
      beatFailed = false;
    } catch (e) {
      // Said once per spell of failures: a tail whose heartbeat cannot be written loses its group to the worker.
      if (!beatFailed)
        process.stderr.write(
          `audit tail: cannot keep its group's heartbeat (${e instanceof Error ? e.message : String(e)})\n`,
        );
      beatFailed = true;
    }
  };
  await beat();
  const beating = heartbeat ? setInterval(() => void beat(), TAIL_HEARTBEAT_EVERY_MS) : undefined;
  const beatOnReconnect = (): void => void beat();
  if (heartbeat) redis.on('ready', beatOnReconnect);
  // Kept until the group is destroyed, not once: Ctrl-C under `npm run` delivers SIGINT twice (from the terminal,
  // to the whole process group, and from npm, which passes it on), and a second one with no handler left would
  // kill the tail before it has destroyed its group.
  signals.on('SIGINT', stop);
  signals.on('SIGTERM', stop);
  signals.on('SIGHUP', stop);
  // A closed pipe (`| head`) ends the tail instead of crashing it. The events it could not print, of the batch
  // in hand, are not acknowledged: a durable group's next tail prints them.
  process.stdout.on('error', stop);
  let outputGone = false;
  const print = async (event: AuditEvent): Promise<void> => {
    if (outputGone) throw OUTPUT_GONE;
    try {
      await out(JSON.stringify(event));
    } catch {
      outputGone = true;
      stop();
      throw OUTPUT_GONE;
    }
  };
  try {
    await subscriber.run(print);
  } finally {
    if (forced) clearTimeout(forced);
    if (beating) clearInterval(beating);
    redis.removeListener('ready', beatOnReconnect);
    if (ephemeral) await subscriber.destroyGroup().catch(() => undefined);
    if (heartbeat) await redis.del(heartbeat).catch(() => undefined);
    await redis.quit().catch(() => redis.disconnect());
    signals.removeListener('SIGINT', stop);
    signals.removeListener('SIGTERM', stop);
    signals.removeListener('SIGHUP', stop);
    process.stdout.removeListener('error', stop);
  }
}
