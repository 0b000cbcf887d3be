/**
 * The sign-in rate limit and account lockout on a private three-master Redis
 * Cluster, connected as auth connects (REDIS_MODE=cluster): the MULTI and the
 * two-key Lua script must stay within one hash slot (their keys share a hash tag).
 */
import { randomUUID } from 'node:crypto';
import {
  createRedisFromConfig,
  loadConfig,
  type RedisClient,
  redisConfigShape,
} from '@latchkey/service-kit';
import { type RedisClusterHandle, startRedisCluster } from '@latchkey/testing';
import { Cluster } from 'ioredis';
import type { AuthConfig } from '../src/config';
import { SignInThrottle } from '../src/sign-in/sign-in-throttle';

const LIMIT = 5;
let cluster: RedisClusterHandle;
let redis: RedisClient;
let throttle: SignInThrottle;

beforeAll(async () => {
  cluster = await startRedisCluster({ password: `pw-${randomUUID()}` });
  redis = createRedisFromConfig(
    loadConfig(redisConfigShape, {
      REDIS_MODE: 'cluster',
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      REDIS_PASSWORD: cluster.password!,
    }),
  );
  if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
  throttle = new SignInThrottle(redis, { SIGN_IN_RATE_LIMIT_PER_MINUTE: LIMIT } as AuthConfig);
}, 60_000);

afterAll(async () => {
  await redis?.quit().catch(() => undefined);
  await cluster?.stop();
});

it('runs on a real cluster, which refuses multi-key commands across hash slots', async () => {
  expect(redis).toBeInstanceOf(Cluster);
  expect((redis as Cluster).nodes('master')).toHaveLength(3);
  // Without a shared hash tag these two keys live in different slots: the cluster says no.
  // Asked of a node directly: the services' client (auto-pipelining) refuses such a command
  // before sending it, and this is about what the server does.
  const node = (redis as Cluster).nodes('master')[0]!;
  await expect(
    node.eval("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", 2, 'latchkey:a', 'latchkey:b'),
  ).rejects.toThrow(/CROSSSLOT/);
});

it('limits attempts per source, reporting the first one over the limit once', async () => {
  const sources = Array.from(
    { length: 10 },
    () => `198.51.100.${Math.floor(Math.random() * 250)}-${randomUUID()}`,
  );
  for (const source of sources) {
    const results = [];
    for (let i = 0; i < LIMIT + 3; i++) results.push(await throttle.admit(source));
    expect(results.map((r) => r.limited)).toEqual([
      ...Array<boolean>(LIMIT).fill(false),
      true,
      true,
      true,
    ]);
    expect(results.filter((r) => r.firstOverLimit)).toHaveLength(1);
  }
});

it('locks an account after the threshold of failures, atomically, and clears failures', async () => {
  const policy = { threshold: 3, windowSeconds: 60, durationSeconds: 120 };
  for (let a = 0; a < 10; a++) {
    const tenant = randomUUID();
    const user = `user-${a}@example.com`;
    const concurrent = await Promise.all(
      Array.from({ length: 8 }, () => throttle.recordFailure(tenant, user, policy)),
    );
    // Exactly one of the concurrent failures locks the account.
    expect(concurrent.filter((r) => r.lockedNow)).toHaveLength(1);
    expect(await throttle.lockedFor(tenant, user)).toBeGreaterThan(100);

    const other = `other-${a}`;
    await throttle.recordFailure(tenant, other, policy);
    await throttle.clearFailures(tenant, other);
    const after = await throttle.recordFailure(tenant, other, policy);
    expect(after).toEqual({ failures: 1, lockedNow: false });
    expect(await throttle.lockedFor(tenant, other)).toBe(0);
  }
});
