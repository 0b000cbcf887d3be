/**
 * A private three-master Redis Cluster for tests: redis-server processes on free
 * 127.0.0.1 ports, data in a temp dir, optionally password-protected. The shared
 * Redis on 6379 is never touched; `stop()` shuts down exactly these processes.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RedisClusterHandle {
  /** host:port of every master (the seed list, as REDIS_CLUSTER_NODES takes it). */
  nodes: string[];
  password?: string;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Free ports whose cluster bus port (port + 10000) is free too. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count && tries < 500; tries++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if (ports.includes(port)) continue;
    if ((await portFree(port)) && (await portFree(port + 10000))) ports.push(port);
  }
  if (ports.length < count) throw new Error('no free ports for a Redis Cluster');
  return ports;
}

export async function startRedisCluster(
  options: { password?: string } = {},
): Promise<RedisClusterHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-cluster-'));
  const ports = await freePorts(3);
  const auth = options.password ? ['-a', options.password, '--no-auth-warning'] : [];
  const cli = (port: number, ...args: string[]) =>
    run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    }).then((r) => r.stdout);
  const stop = async () => {
    await Promise.all(ports.map((p) => cli(p, 'shutdown', 'nosave').catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await run('redis-server', [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'yes',
        '--pidfile',
        join(dir, `${port}.pid`),
        '--logfile',
        join(dir, `${port}.log`),
        ...(options.password
          ? ['--requirepass', options.password, '--masterauth', options.password]
          : []),
      ]);
    }
    for (const port of ports) {
      for (let i = 0; !(await cli(port, 'ping').catch(() => '')).includes('PONG'); i++) {
        if (i > 100) throw new Error(`redis-server on ${port} did not start`);
        await sleep(100);
      }
    }
    await run(
      'redis-cli',
      [
        ...auth,
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    for (let i = 0; ; i++) {
      const infos = await Promise.all(ports.map((p) => cli(p, 'cluster', 'info').catch(() => '')));
      if (infos.every((info) => info.includes('cluster_state:ok'))) break;
      if (i > 150) throw new Error('the Redis Cluster did not become ready');
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`), password: options.password, stop };
}
