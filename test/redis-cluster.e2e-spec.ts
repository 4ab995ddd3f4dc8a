import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { auditRelayChannel } from '@app/audit';
import { startApi, type RunningApi } from './support/api-harness';
import { eventually } from './support/eventually';
import { startWorker, type RunningWorker } from './support/worker-harness';
import { closedPort } from './support/closed-port';

const cli = (...args: string[]) =>
  execFileSync('redis-cli', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * The API and the worker on a real three-node Redis Cluster (redis-server processes of this test, in a temporary
 * directory): queues, scheduled jobs, the audit stream, rate limits and deliveries all work through a Cluster
 * client seeded with one node.
 */
describe('on a Redis Cluster (REDIS_CLUSTER=true)', () => {
  const nodes: ChildProcess[] = [];
  let dir: string;
  let ports: number[];
  /** A replica of the first master (the queues' shard), and each node's process by port. */
  let replicaPort: number;
  const nodeOf = new Map<number, ChildProcess>();
  let cluster: Cluster;
  let api: RunningApi;
  let worker: RunningWorker;
  // Names that hash to different slots than the queues' `{webhooks}` tag, so several nodes take part.
  const AUDIT_STREAM = 'cluster-test:audit-1'; // slot 5489: the second master of three
  const EVENTS_STREAM = 'cluster-test:events-1'; // slot 15072: the third (the queues' tag is on the first)

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'webhooks-cluster-'));
    const pong = (port: number) => {
      try {
        return cli('-p', String(port), 'ping').trim() === 'PONG';
      } catch {
        return false;
      }
    };
    /**
     * A cluster-enabled redis-server on free ports, answering. A port found free may be taken again before the
     * server binds it (other connections of the run come and go): a node that exits is started again on others.
     */
    const startNode = async (): Promise<number> => {
      let output = '';
      for (let attempt = 1; attempt <= 5; attempt++) {
        const port = await closedPort();
        // The cluster bus port is given explicitly: by default it is port + 10000, which may be taken or too high.
        const node = spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--cluster-port',
            String(await closedPort()),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            dir,
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        nodes.push(node);
        output = '';
        for (const stream of [node.stdout, node.stderr])
          stream.on('data', (d: Buffer) => (output += d.toString()));
        const state = await eventually(() => (node.exitCode !== null ? 'exited' : pong(port) && 'up'));
        if (state === 'up') {
          nodeOf.set(port, node);
          return port;
        }
      }
      throw new Error(`redis-server did not start: ${output}`);
    };
    ports = [await startNode(), await startNode(), await startNode()];
    cli(
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    );
    await eventually(() =>
      ports.every((p) => cli('-p', String(p), 'cluster', 'info').includes('cluster_state:ok')),
    );
    replicaPort = await startNode();
    cli(
      '--cluster',
      'add-node',
      `127.0.0.1:${replicaPort}`,
      `127.0.0.1:${ports[0]}`,
      '--cluster-slave',
      '--cluster-master-id',
      cli('-p', String(ports[0]), 'cluster', 'myid').trim(),
    );
    await eventually(() =>
      cli('-p', String(replicaPort), 'info', 'replication').includes('master_link_status:up'),
    );

    cluster = new Cluster([{ host: '127.0.0.1', port: ports[0] }]);
    const env = {
      REDIS_URL: `redis://127.0.0.1:${ports[1]}`,
      REDIS_CLUSTER: 'true',
      AUDIT_STREAM,
      EVENTS_STREAM,
      RATE_LIMIT_PER_MINUTE: '1000',
    };
    api = await startApi({ env });
    worker = await startWorker({ env });
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    cluster?.disconnect();
    for (const node of nodes) node.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Resolves once a request of the key is counted on the cluster (the limiter's script runs on its key's node). */
  const countedOnCluster = (apiKeyId: string) =>
    eventually(async () => {
      const window = Math.floor(Date.now() / 60_000);
      const counts = await Promise.all(
        [window - 1, window].map((w) => cluster.get(`ratelimit:${apiKeyId}:${w}`)),
      );
      return counts.some((c) => Number(c) >= 1);
    }, 10_000);

  it('runs the API, the queues, the job schedulers and the audit relay', async () => {
    expect((await api.http.get('/health/ready')).status).toBe(200);
    const { key, apiKeyId } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/cluster', subscribed_events: ['task.completed'] },
    });
    expect(created.status).toBe(201);
    // The request is counted on the cluster.
    await countedOnCluster(apiKeyId);
    const id = created.body.id as string;

    // The change's audit event reaches the stream on the cluster.
    await eventually(async () => {
      const entries = await cluster.xrange(AUDIT_STREAM, '-', '+');
      return entries.some(([, fields]) => fields.join(' ').includes(id));
    }, 15_000);

    // The relay listens for its wake-ups on the cluster (a subscription on one of the nodes).
    await eventually(async () => {
      const counts = await Promise.all(
        cluster.nodes('all').map((node) => node.pubsub('NUMSUB', auditRelayChannel(AUDIT_STREAM))),
      );
      return counts.reduce((sum: number, reply) => sum + Number(reply[1]), 0) >= 1;
    }, 10_000);

    // The worker's job schedulers are registered on the cluster (one hash slot for every queue key).
    for (const queue of ['rotation', 'audit', 'housekeeping'])
      expect(await cluster.exists(`{webhooks}:${queue}:repeat`)).toBe(1);

    // A test event is queued on the cluster and the worker makes its attempt (the name does not resolve here, so
    // the attempt is recorded with that error and, the attempt being the job's, a retry is scheduled).
    const test = await api.http.post(`/v1/webhooks/${id}/test`, {
      key,
      body: { event_type: 'task.completed' },
    });
    expect(test.status).toBe(202);
    const attempted = await eventually(async () => {
      const log = await api.http.get(`/v1/webhooks/${id}/events`, { key });
      const [row] = log.body.events as { attempt: number; error_message: string | null }[];
      return row && row.attempt >= 1 && row.error_message !== null && row;
    }, 20_000);
    expect(attempted.error_message).toMatch(/hooks\.example\.com/);

    // An event another service publishes on the events stream (its consumer group and blocking reads on the
    // cluster) is fanned out to the webhook.
    const eventId = 'evt_01JD4W1B6T0Q8H3X2Z5N7M9K4Q';
    await cluster.xadd(
      EVENTS_STREAM,
      '*',
      'event',
      JSON.stringify({ id: eventId, type: 'task.completed', project_id: created.body.project_id, data: {} }),
    );
    await eventually(async () => {
      const log = await api.http.get(`/v1/webhooks/${id}/events`, { key });
      return (log.body.events as { external_event_id: string }[]).some(
        (e) => e.external_event_id === eventId,
      );
    }, 20_000);
  });

  it('follows a failover away from a master that hangs within seconds, not after the socket timeout', async () => {
    const { key } = await api.newKey();
    const created = await api.http.post('/v1/webhooks', {
      key,
      body: { url: 'https://hooks.example.com/failover', subscribed_events: ['task.completed'] },
    });
    const testEvent = () =>
      api.http.post(`/v1/webhooks/${created.body.id as string}/test`, {
        key,
        body: { event_type: 'task.completed' },
      });
    expect((await testEvent()).status).toBe(202);

    // The queues' master hangs (its connections stay open, nothing answers) and its replica takes over.
    const paused = nodeOf.get(ports[0])!;
    paused.kill('SIGSTOP');
    try {
      cli('-p', String(replicaPort), 'cluster', 'failover', 'takeover');
      await eventually(() => cli('-p', String(replicaPort), 'role').startsWith('master'));

      // Meanwhile 503 (the delivery queue gets no answer), and 202 again well before the 20 s socket timeout.
      await eventually(
        async () => {
          const res = await testEvent();
          if (res.status !== 202) expect(res.status).toBe(503);
          return res.status === 202;
        },
        10_000,
        'a test event accepted after the failover',
      );
      // Readiness probes the queues' slot through another client, which reads the slot map on its own timer.
      await eventually(
        async () => (await api.http.get('/health/ready')).status === 200,
        10_000,
        'readiness after the failover',
      );
    } finally {
      // Back as a replica of the new master.
      paused.kill('SIGCONT');
    }
  }, 30_000);

  it('finds the cluster through REDIS_CLUSTER_NODES when the seed REDIS_URL names does not answer', async () => {
    const dead = await closedPort();
    const other = await startApi({
      env: {
        REDIS_URL: `redis://127.0.0.1:${dead}`,
        REDIS_CLUSTER: 'true',
        REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(','),
        AUDIT_STREAM,
        EVENTS_STREAM,
      },
    });
    try {
      // Readiness probes the queues' slot on the cluster: ready once the client has found it through the seeds.
      await eventually(async () => (await other.http.get('/health/ready')).status === 200, 15_000);
      // The request is counted on the cluster.
      const { key, apiKeyId } = await other.newKey();
      expect((await other.http.get('/v1/webhooks', { key })).status).toBe(200);
      await countedOnCluster(apiKeyId);
    } finally {
      await other.close();
    }
  });
});
