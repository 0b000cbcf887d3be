/**
 * The platform's nonce store against real Redis: a single server and a
 * three-master Redis Cluster (started privately for this suite).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { REPO_ROOT } from '@latchkey/testing';
import { type NonceBinding, NonceStore } from './nonce-store';

const BASE_PORT = 7100 + (process.pid % 50) * 10;
const PORTS = [BASE_PORT + 1, BASE_PORT + 2, BASE_PORT + 3];
const DIR = join(REPO_ROOT, 'tmp', `redis-cluster-${process.pid}`);

const cli = (...args: string[]) => execFileSync('redis-cli', args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const binding = (): NonceBinding => ({
  tenantId: randomUUID(),
  deviceId: randomUUID(),
  purpose: 'sign_in',
});

async function startCluster(): Promise<void> {
  for (const port of PORTS) {
    const dir = join(DIR, String(port));
    mkdirSync(dir, { recursive: true });
    execFileSync('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
    ]);
  }
  for (const port of PORTS) {
    for (let i = 0; i < 50 && !/PONG/.test(safe(() => cli('-p', String(port), 'ping'))); i++)
      await sleep(100);
  }
  cli(
    '--cluster',
    'create',
    ...PORTS.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  );
  for (let i = 0; i < 100; i++) {
    if (
      PORTS.every((p) =>
        /cluster_state:ok/.test(safe(() => cli('-p', String(p), 'cluster', 'info'))),
      )
    )
      return;
    await sleep(100);
  }
  throw new Error('redis cluster did not become ready');
}

function safe(f: () => string): string {
  try {
    return f();
  } catch {
    return '';
  }
}

function stopCluster(): void {
  for (const port of PORTS) safe(() => cli('-p', String(port), 'shutdown', 'nosave'));
  rmSync(DIR, { recursive: true, force: true });
}

describe.each([
  ['a single Redis', () => new Redis('redis://127.0.0.1:6379')],
  ['a Redis Cluster', () => new Cluster(PORTS.map((port) => ({ host: '127.0.0.1', port })))],
] as const)('NonceStore on %s', (_name, connect) => {
  let redis: Redis | Cluster;
  let store: NonceStore;

  beforeAll(async () => {
    if (_name === 'a Redis Cluster') {
      stopCluster();
      await startCluster();
    }
    redis = connect();
    store = new NonceStore(redis, 2);
  }, 60_000);

  afterAll(async () => {
    await redis?.quit().catch(() => undefined);
    if (_name === 'a Redis Cluster') stopCluster();
  });

  it('issues 32-byte base64url nonces that are consumed once each, across hash slots', async () => {
    const b = binding();
    const issued = await Promise.all(Array.from({ length: 100 }, () => store.issue(b)));
    for (const { nonce } of issued) expect(Buffer.from(nonce, 'base64url')).toHaveLength(32);
    expect(new Set(issued.map((i) => i.nonce)).size).toBe(100);
    const first = await Promise.all(issued.map(({ nonce }) => store.consume(nonce, b)));
    const second = await Promise.all(issued.map(({ nonce }) => store.consume(nonce, b)));
    expect(first.every(Boolean)).toBe(true);
    expect(second.some(Boolean)).toBe(false);
  });

  it('lets exactly one of 200 concurrent consumers have a nonce', async () => {
    const b = binding();
    const { nonce } = await store.issue(b);
    const results = await Promise.all(Array.from({ length: 200 }, () => store.consume(nonce, b)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('refuses an expired nonce, a differently bound one and garbage', async () => {
    const b = binding();
    const expiring = await store.issue(b);
    await sleep(2_300);
    await expect(store.consume(expiring.nonce, b)).resolves.toBe(false);
    const bound = await store.issue(b);
    await expect(store.consume(bound.nonce, { ...b, purpose: 'refresh' })).resolves.toBe(false);
    await expect(store.consume(bound.nonce, b)).resolves.toBe(false); // burned by the wrong use
    await expect(store.consume('not a nonce', b)).resolves.toBe(false);
  });
});
