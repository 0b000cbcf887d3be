/**
 * The nonce store and the fail-closed behaviour of auth, end to end: concurrent
 * consumers of one nonce, expiry, per-source rate limits, and Redis stopped
 * under a running service (a private Redis, so other suites keep theirs).
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { grpcAddress, httpBase, reasonOf, type UnaryClient } from '@latchkey/testing';
import {
  authClient,
  outboxEvents,
  PrivateRedis,
  seedAccount,
  settles,
  signIn,
  startAuthInstance,
  unique,
} from './support';

const redis = new PrivateRedis(6390 + (Number(process.env.JEST_WORKER_ID ?? 1) % 5));
const REDIS_PORT = redis.port;
const startRedis = () => redis.start();
const stopRedis = () => redis.stop();
const redisUp = () => redis.up();

const binding = () => ({
  tenantId: randomUUID(),
  deviceId: randomUUID(),
  purpose: 'NONCE_PURPOSE_SIGN_IN',
});

describe('nonces (shared auth instance)', () => {
  let clients: UnaryClient[];
  beforeAll(() => {
    clients = Array.from({ length: 8 }, () => authClient('AuthService', grpcAddress('auth')));
  });
  afterAll(() => clients.forEach((c) => c.close()));

  it('200 concurrent consumers of one nonce: exactly one succeeds', async () => {
    const b = binding();
    const { nonce } = await clients[0]!.GetNonce(b);
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        clients[i % clients.length]!.ConsumeNonce({ ...b, nonce }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect(reasonOf((r as PromiseRejectedResult).reason)).toBe('NONCE_REJECTED');
    }
  });

  it('accepts a nonce only with the tenant, device and purpose it was issued for, and burns it otherwise', async () => {
    const b = binding();
    const auth = clients[0]!;
    for (const other of [
      { ...b, deviceId: randomUUID() },
      { ...b, tenantId: randomUUID() },
      { ...b, purpose: 'NONCE_PURPOSE_REFRESH' },
    ]) {
      const { nonce } = await auth.GetNonce(b);
      const err = await auth.ConsumeNonce({ ...other, nonce }).catch((e: unknown) => e);
      expect(reasonOf(err)).toBe('NONCE_REJECTED');
      const again = await auth.ConsumeNonce({ ...b, nonce }).catch((e: unknown) => e);
      expect(reasonOf(again)).toBe('NONCE_REJECTED');
    }
    const viaHttp = await fetch(`${httpBase('auth')}/v1/nonces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...b, purpose: 'SIGN_IN' }),
    });
    expect(viaHttp.status).toBe(201);
    const { nonce: httpNonce } = (await viaHttp.json()) as { nonce: string };
    await expect(auth.ConsumeNonce({ ...b, nonce: httpNonce })).resolves.toEqual({});
    const bad = await auth
      .GetNonce({ ...b, purpose: 'NONCE_PURPOSE_UNSPECIFIED' })
      .catch((e: unknown) => e);
    expect((bad as { code: number }).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('a dedicated auth instance on a private Redis', () => {
  let instance: Awaited<ReturnType<typeof startAuthInstance>>;
  let auth: UnaryClient;

  beforeAll(async () => {
    stopRedis();
    startRedis();
    await redisUp();
    instance = await startAuthInstance('auth-private-redis', {
      REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}`,
      NONCE_TTL_SECONDS: '2',
      SIGN_IN_RATE_LIMIT_PER_MINUTE: '6',
    });
    auth = instance.auth;
  }, 90_000);

  afterAll(async () => {
    await instance?.stop();
    stopRedis();
  });

  it('refuses an expired nonce', async () => {
    const b = binding();
    const { nonce } = await auth.GetNonce(b);
    await new Promise((r) => setTimeout(r, 2_500));
    const err = await auth.ConsumeNonce({ ...b, nonce }).catch((e: unknown) => e);
    expect(reasonOf(err)).toBe('NONCE_REJECTED');
    const fresh = await auth.GetNonce(b);
    await expect(auth.ConsumeNonce({ ...b, nonce: fresh.nonce })).resolves.toEqual({});
  });

  it('rate-limits password attempts per source', async () => {
    const username = unique('flood');
    const req = { tenant: 'platform', username, password: 'y' };
    const reasons: (string | undefined)[] = [];
    for (let i = 0; i < 8; i++)
      reasons.push(reasonOf(await auth.SignInWithPassword(req).catch((e: unknown) => e)));
    expect(reasons.slice(0, 6)).toEqual(Array(6).fill('SIGN_IN_FAILED'));
    expect(reasons.slice(6)).toEqual(['SIGN_IN_RATE_LIMITED', 'SIGN_IN_RATE_LIMITED']);
    // The first refused attempt is recorded (not every one of a flood).
    await settles(async () => {
      const ev = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', { username });
      expect(ev.map((e) => e.data.reason)).toEqual([
        ...Array(5).fill('unknown_user'),
        'user_locked', // an unknown username locks like a real one
        'rate_limited',
      ]);
    });
  });

  it('fails closed with UNAVAILABLE while Redis is down and recovers by itself when it returns', async () => {
    const operator = await seedAccount(PLATFORM_TENANT_ID, unique('op-redis'), ['operator']);
    stopRedis();
    const nonceErr = await auth.GetNonce(binding()).catch((e: unknown) => e);
    expect((nonceErr as { code: number }).code).toBe(status.UNAVAILABLE);
    const signInErr = await auth
      .SignInWithPassword({
        tenant: operator.tenantId,
        username: operator.username,
        password: operator.password,
      })
      .catch((e: unknown) => e);
    expect((signInErr as { code: number }).code).toBe(status.UNAVAILABLE);

    startRedis(); // empty: the rate-limit counters of the previous test are gone too
    await redisUp();
    await settles(async () => {
      await expect(auth.GetNonce(binding())).resolves.toHaveProperty('nonce');
    });
    await expect(signIn(auth, operator)).resolves.toMatch(/^ey/);
  }, 90_000);
});
