/**
 * The platform's nonce store against real Redis, connected the way the services
 * connect (createRedisFromConfig): the shared single server, and a private
 * three-master, password-protected Redis Cluster (REDIS_MODE=cluster).
 */
import { randomUUID } from 'node:crypto';
import { type RedisClusterHandle, startRedisCluster } from '@latchkey/testing';
import { loadConfig, redisConfigShape } from '../config/config';
import { createRedisFromConfig, type RedisClient } from '../redis/redis';
import { type NonceBinding, NonceStore } from './nonce-store';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const binding = (): NonceBinding => ({
  tenantId: randomUUID(),
  deviceId: randomUUID(),
  purpose: 'sign_in',
});

let cluster: RedisClusterHandle | undefined;

describe.each([
  ['a single Redis', async () => ({ REDIS_URL: 'redis://127.0.0.1:6379' })],
  [
    'a Redis Cluster',
    async () => {
      cluster = await startRedisCluster({ password: `pw-${randomUUID()}` });
      return {
        REDIS_MODE: 'cluster',
        REDIS_CLUSTER_NODES: cluster.nodes.join(','),
        REDIS_PASSWORD: cluster.password!,
      };
    },
  ],
] as const)('NonceStore on %s', (_name, environment) => {
  let redis: RedisClient;
  let store: NonceStore;

  beforeAll(async () => {
    redis = createRedisFromConfig(loadConfig(redisConfigShape, await environment()));
    if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
    store = new NonceStore(redis, 2);
  }, 60_000);

  afterAll(async () => {
    await redis?.quit().catch(() => undefined);
    await cluster?.stop();
    cluster = undefined;
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
