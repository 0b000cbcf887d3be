/**
 * Scheduled rotation of the token-signing keys, on an auth instance with its own
 * database and a rotation period of seconds: the next key is published before it
 * signs, and tokens signed by the previous key keep validating (jose remote JWKS
 * from discovery, no project code on the validating side).
 */
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { launcher, ScratchDatabase, TEST_PROFILE, type UnaryClient } from '@latchkey/testing';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { join } from 'node:path';
import { createAccount, seedContext } from '../src/seed/seed';
import { authClient, freePort, settles, signIn } from './support';

const DB = `latchkey_tauth_auth_rotation_${process.pid}`;
let scratch: ScratchDatabase;
let child: ReturnType<typeof launcher.startService>;
let auth: UnaryClient;
let issuer: string;
const databaseUrl = `postgresql://postgres@127.0.0.1:5432/${DB}`;

beforeAll(async () => {
  scratch = await ScratchDatabase.create(DB, 'auth');
  const httpPort = await freePort();
  const grpcPort = await freePort();
  issuer = `http://127.0.0.1:${httpPort}`;
  child = launcher.startService('auth', {
    profile: TEST_PROFILE,
    env: {
      DATABASE_URL: databaseUrl,
      HTTP_PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
      AUTH_ISSUER: issuer,
      SIGNING_KEY_ROTATION_SECONDS: '6',
      SIGNING_KEY_CHECK_SECONDS: '1',
    },
    logFile: join(launcher.root, 'tmp', `e2e-${TEST_PROFILE}`, 'logs', 'auth-rotation.log'),
  });
  await settles(async () => {
    expect((await fetch(`${issuer}/readyz`)).status).toBe(200);
  }, 60_000);
  auth = authClient('AuthService', `127.0.0.1:${grpcPort}`);
}, 90_000);

afterAll(async () => {
  auth?.close();
  if (child) await launcher.stopChild(child);
  await scratch?.drop();
});

it('rotates on schedule with the next key published ahead and the previous one kept for the overlap', async () => {
  const ctx = seedContext({
    ...launcher.serviceEnv('auth', TEST_PROFILE),
    DATABASE_URL: databaseUrl,
  });
  const accounts = [];
  try {
    for (const name of ['rot-1', 'rot-2'])
      accounts.push(
        await createAccount(ctx, PLATFORM_TENANT_ID, {
          username: name,
          displayName: name,
          roles: ['operator'],
        }),
      );
  } finally {
    await ctx.close();
  }
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    jwks_uri: string;
  };
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const verify = (t: string) =>
    jwtVerify(t, jwks, { issuer, audience: 'latchkey', algorithms: ['ES256'] });
  const kids = async () =>
    ((await (await fetch(discovery.jwks_uri)).json()) as { keys: { kid: string }[] }).keys.map(
      (k) => k.kid,
    );

  const before = await signIn(auth, accounts[0]!);
  const beforeKid = decodeProtectedHeader(before).kid!;
  await verify(before);
  const publishedBefore = await kids();
  expect(publishedBefore).toContain(beforeKid);
  expect(publishedBefore.length).toBeGreaterThanOrEqual(2); // current + next

  // Wait for a scheduled rotation: the key that signs changes to one that was already published.
  const rotatedKid = await settles(async () => {
    const current = (
      await scratch.$queryRawUnsafe<{ kid: string }[]>(
        `SELECT kid FROM signing_keys WHERE status = 'current'`,
      )
    )[0]!.kid;
    expect(current).not.toBe(beforeKid);
  }, 20_000).then(
    async () =>
      (
        await scratch.$queryRawUnsafe<{ kid: string }[]>(
          `SELECT kid FROM signing_keys WHERE status = 'current'`,
        )
      )[0]!.kid,
  );
  const after = await signIn(auth, accounts[1]!);
  const afterKid = decodeProtectedHeader(after).kid!;
  expect(afterKid).not.toBe(beforeKid);
  expect(publishedBefore.concat(await kids())).toContain(afterKid);
  await expect(verify(after)).resolves.toBeDefined();
  await expect(verify(before)).resolves.toBeDefined();
  // The key that took over had been in the JWKS before it signed anything.
  expect(publishedBefore).toContain(rotatedKid);
  const events = await scratch.$queryRawUnsafe<{ data: { trigger: string } }[]>(
    `SELECT data FROM outbox_events WHERE type = 'dev.latchkey.auth.signing_key.rotated.v1' ORDER BY id`,
  );
  expect(events.map((e) => e.data.trigger)).toEqual(
    expect.arrayContaining(['initial', 'schedule']),
  );
}, 90_000);
