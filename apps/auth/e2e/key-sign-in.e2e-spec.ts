/**
 * Key-based sign-in against the whole stack: a tenant made in auth, a device
 * registered with registration (join token from a real admin sign-in), a user
 * key provisioned by provisioning after password + TOTP, then SignInWithKey,
 * the session key decrypted with the transport key, RefreshWithPrt with a
 * proof made from it, and every attack of issue 6 refused with its reason in
 * the `auth.sign_in.failed` event. Revocations (RevokeCredential,
 * DisableDevice) are measured: refused within 1 s.
 */
import { hkdfSync, type KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { INestApplicationContext } from '@nestjs/common';
import {
  compactDecrypt,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
  SignJWT,
} from 'jose';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { KeySignInService } from '../src/key-sign-in/key-sign-in.service';
import { TokenIssuer } from '../src/signing-keys/token-issuer';
import { startAuthReplica } from './auth-replica';
import {
  createTenant,
  deviceMaterial,
  EC,
  enrolDevice,
  grpcAddress,
  grpcClient,
  httpBase,
  newUserKey,
  provisionKey,
  reasonOf,
  type UnaryClient,
  waitForDeviceCa,
} from '@latchkey/testing';
import {
  authClient,
  authDb,
  authEnv,
  bearer,
  outboxEvents,
  PrivateRedis,
  signedInAccount,
  settles,
  startAuthInstance,
  unique,
} from './support';

const ISSUER = authEnv().AUTH_ISSUER!;
let auth: UnaryClient;
let admin: UnaryClient;
let registration: UnaryClient;
let provisioning: UnaryClient;
let tenantId: string;
let adminToken: string;

interface Person {
  userId: string;
  token: string;
}
interface Device {
  deviceId: string;
  keys: webcrypto.CryptoKeyPair;
  transportPrivateKey: KeyObject;
}
interface UserKey {
  credentialId: string;
  userId: string;
  privateKey: KeyObject;
  alg: 'ES256' | 'RS256';
}

async function person(name: string, roles: string[] = ['user']): Promise<Person> {
  const { userId, token } = await signedInAccount(auth, tenantId, name, roles);
  return { userId, token };
}

async function registerDevice(transport: 'rsa' | 'ec'): Promise<Device> {
  const d = await enrolDevice(registration, tenantId, bearer(adminToken), {
    material: await deviceMaterial({ transport }),
    joinToken: { ttlSeconds: 600, deviceNamePrefix: '' },
    extra: { displayName: 'KEY-SIGN-IN' },
  });
  return { deviceId: d.deviceId, keys: d.keys, transportPrivateKey: d.transportPrivateKey };
}

/** Provisioning as a device does it: Begin (device assertion) → Complete (proof over the challenge). */
async function provision(device: Device, user: Person, alg: 'ES256' | 'RS256' = 'ES256') {
  const key = newUserKey(alg);
  const { credentialId } = await provisionKey(
    provisioning,
    { tenantId, ...device },
    bearer(user.token),
    key,
  );
  return { credentialId, userId: user.userId, privateKey: key.privateKey, alg } as UserKey;
}

async function nonceFor(device: Device, purpose = 'NONCE_PURPOSE_SIGN_IN', client = auth) {
  return (await client.GetNonce({ tenantId, deviceId: device.deviceId, purpose })).nonce as string;
}

interface RequestOptions {
  nonce?: string;
  /** The nonce inside the user assertion; null leaves it out. */
  innerNonce?: string | null;
  userAud?: string;
  iss?: string;
  iat?: number;
  exp?: number;
  deviceKey?: webcrypto.CryptoKey;
  client?: UnaryClient;
}

/** The sign-in request: device-signed JWS carrying the user-signed assertion. */
async function signInRequest(device: Device, key: UserKey, o: RequestOptions = {}) {
  const nonce = o.nonce ?? (await nonceFor(device, undefined, o.client));
  const now = Math.floor(Date.now() / 1000);
  const iat = o.iat ?? now;
  const inner = await new SignJWT(
    o.innerNonce === null ? {} : { request_nonce: o.innerNonce ?? nonce },
  )
    .setProtectedHeader({ alg: key.alg, kid: key.credentialId })
    .setIssuer(o.iss ?? key.userId)
    .setAudience(o.userAud ?? ISSUER)
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 120)
    .sign(key.privateKey);
  return new SignJWT({ tid: tenantId, nonce, user_assertion: inner })
    .setProtectedHeader({ alg: 'ES256', kid: device.deviceId })
    .setSubject(device.deviceId)
    .setAudience(ISSUER)
    .setIssuedAt()
    .sign(o.deviceKey ?? device.keys.privateKey);
}

interface Tokens {
  idToken: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

async function signInWithKey(device: Device, key: UserKey, o: RequestOptions = {}) {
  const res = await (o.client ?? auth).SignInWithKey({
    request: await signInRequest(device, key, o),
  });
  return { tokens: res.tokens as Tokens, sessionKeyJwe: res.sessionKeyJwe as string };
}

async function sessionKeyOf(device: Device, jwe: string): Promise<Buffer> {
  return Buffer.from((await compactDecrypt(jwe, device.transportPrivateKey)).plaintext);
}

async function refreshProof(device: Device, sessionKey: Buffer, nonce?: string) {
  const ctx = randomBytes(32);
  const key = new Uint8Array(hkdfSync('sha256', sessionKey, ctx, 'latchkey/prt-proof/v1', 32));
  return new SignJWT({
    tid: tenantId,
    nonce: nonce ?? (await nonceFor(device, 'NONCE_PURPOSE_REFRESH')),
  })
    .setProtectedHeader({ alg: 'HS256', ctx: ctx.toString('base64url') })
    .setSubject(device.deviceId)
    .setAudience(ISSUER)
    .setIssuedAt()
    .sign(key);
}

async function refresh(device: Device, refreshToken: string, sessionKey: Buffer) {
  const res = await auth.RefreshWithPrt({
    refreshToken,
    proof: await refreshProof(device, sessionKey),
  });
  return res.tokens as Tokens;
}

async function refusal(p: Promise<unknown>) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('expected the call to fail');
  return { code: (err as { code: number }).code, reason: reasonOf(err) };
}

/** The reasons of the failure events about `deviceId` (auth's outbox). */
async function failureReasons(deviceId: string): Promise<string[]> {
  const rows = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', { deviceId });
  return rows.map((r) => String(r.data.reason));
}

/** Waits for the failure event with `reason` about `deviceId`. */
async function expectReason(deviceId: string, reason: string) {
  await settles(async () => {
    expect(await failureReasons(deviceId)).toContain(reason);
  }, 10_000);
}

let alice: Person;
let bob: Person;
let laptop: Device;
let tablet: Device;
let aliceOnLaptop: UserKey;
let bobOnLaptop: UserKey;
let aliceOnTablet: UserKey;

beforeAll(async () => {
  auth = authClient('AuthService');
  admin = authClient('AdminService');
  registration = grpcClient('registration', grpcAddress('registration'));
  provisioning = grpcClient('provisioning', grpcAddress('provisioning'));
  const operator = await signedInAccount(auth, PLATFORM_TENANT_ID, 'op-key', ['operator']);
  tenantId = await createTenant(admin, bearer(operator.token), {
    name: unique('key-sign-in'),
    displayName: 'Key sign-in',
  });
  adminToken = (await signedInAccount(auth, tenantId, 'admin', ['admin'])).token;
  await waitForDeviceCa(registration, tenantId, 'the tenant device CA');
  [alice, bob] = await Promise.all([person('alice'), person('bob')]);
  [laptop, tablet] = await Promise.all([registerDevice('rsa'), registerDevice('ec')]);
  aliceOnLaptop = await provision(laptop, alice);
  bobOnLaptop = await provision(laptop, bob, 'RS256');
  aliceOnTablet = await provision(tablet, alice);
}, 180_000);

afterAll(() => {
  for (const c of [auth, admin, registration, provisioning]) c?.close();
});

describe('key sign-in, session key and refresh', () => {
  it('signs in with the keys, issues tokens valid from discovery alone, and refreshes with the session key', async () => {
    const { tokens, sessionKeyJwe } = await signInWithKey(laptop, aliceOnLaptop);

    // Validated with jose from the discovery document only.
    const discovery = (await (
      await fetch(`${ISSUER}/.well-known/openid-configuration`)
    ).json()) as { issuer: string; jwks_uri: string };
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const { payload: at } = await jwtVerify(tokens.accessToken, jwks, {
      issuer: discovery.issuer,
    });
    expect(at).toMatchObject({
      sub: alice.userId,
      tid: tenantId,
      did: laptop.deviceId,
      cid: aliceOnLaptop.credentialId,
      sid: tokens.sessionId,
    });
    expect(at.amr).toEqual(expect.arrayContaining(['pop', 'swk']));
    const { payload: idt } = await jwtVerify(tokens.idToken, jwks, {
      issuer: discovery.issuer,
      audience: 'latchkey-device',
    });
    expect(idt).toMatchObject({ sub: alice.userId, did: laptop.deviceId });

    // The session key: RSA-OAEP-256 to the laptop's transport key, 256 bits.
    expect(decodeProtectedHeader(sessionKeyJwe)).toMatchObject({
      alg: 'RSA-OAEP-256',
      enc: 'A256GCM',
    });
    const sessionKey = await sessionKeyOf(laptop, sessionKeyJwe);
    expect(sessionKey).toHaveLength(32);

    // The database holds neither the PRT nor the session key.
    const rows = await authDb<Record<string, string>>('SELECT * FROM key_sessions WHERE id = $1', [
      tokens.sessionId,
    ]);
    const stored = JSON.stringify(rows[0]);
    expect(stored).not.toContain(tokens.refreshToken);
    expect(stored).not.toContain(sessionKey.toString('base64url'));
    expect(stored).not.toContain(sessionKey.toString('base64'));

    // Refresh: new tokens and a new PRT; the previous PRT stops working.
    const next = await refresh(laptop, tokens.refreshToken, sessionKey);
    expect(next.refreshToken).not.toEqual(tokens.refreshToken);
    const { payload: at2 } = await jwtVerify(next.accessToken, jwks, { issuer: ISSUER });
    expect(at2).toMatchObject({ sub: alice.userId, did: laptop.deviceId });
    const again = await refresh(laptop, next.refreshToken, sessionKey);
    expect(again.sessionId).toBe(tokens.sessionId);

    // An older PRT is simply refused; the one just rotated out, presented again, means
    // someone else holds a copy: the session is revoked.
    expect((await refusal(refresh(laptop, tokens.refreshToken, sessionKey))).reason).toBe(
      'REFRESH_FAILED',
    );
    expect((await refusal(refresh(laptop, next.refreshToken, sessionKey))).reason).toBe(
      'REFRESH_FAILED',
    );
    await expectReason(laptop.deviceId, 'refresh_token_reused');
    const afterReuse = await refusal(refresh(laptop, again.refreshToken, sessionKey));
    expect(afterReuse).toEqual({ code: status.UNAUTHENTICATED, reason: 'REFRESH_FAILED' });
    await expectReason(laptop.deviceId, 'session_revoked');
  });

  it('works over HTTPS too: POST /v1/token with an EC transport key (ECDH-ES), then a refresh grant', async () => {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      request: await signInRequest(tablet, aliceOnTablet),
    });
    const res = await fetch(`${httpBase('auth')}/v1/token`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string>;
    expect(body.token_type).toBe('Bearer');
    expect(decodeProtectedHeader(body.session_key_jwe!)).toMatchObject({ alg: 'ECDH-ES' });
    const sessionKey = await sessionKeyOf(tablet, body.session_key_jwe!);
    const refreshed = await fetch(`${httpBase('auth')}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'refresh_token',
        refresh_token: body.refresh_token,
        proof: await refreshProof(tablet, sessionKey),
      }),
    });
    expect(refreshed.status).toBe(200);
    expect(((await refreshed.json()) as { access_token: string }).access_token).toMatch(/^ey/);

    const bad = await fetch(`${httpBase('auth')}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password' }),
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
  });

  it('refuses a PRT without a valid session-key proof', async () => {
    const { tokens, sessionKeyJwe } = await signInWithKey(tablet, aliceOnTablet);
    const wrongKey = randomBytes(32);
    const err = await refusal(refresh(tablet, tokens.refreshToken, wrongKey));
    expect(err).toEqual({ code: status.UNAUTHENTICATED, reason: 'REFRESH_FAILED' });
    await expectReason(tablet.deviceId, 'bad_session_proof');
    // The PRT itself still works with the real proof: a failed proof does not rotate it.
    const sessionKey = await sessionKeyOf(tablet, sessionKeyJwe);
    await expect(refresh(tablet, tokens.refreshToken, sessionKey)).resolves.toBeDefined();
  });

  it('lets an admin revoke the sessions of a user at once', async () => {
    const { tokens, sessionKeyJwe } = await signInWithKey(tablet, aliceOnTablet);
    const sessionKey = await sessionKeyOf(tablet, sessionKeyJwe);
    const res = await auth.RevokeSessions(
      { tenantId, userId: alice.userId, deviceId: '', reason: 'lost laptop' },
      bearer(adminToken),
    );
    expect(res.revokedCount).toBeGreaterThanOrEqual(1);
    const err = await refusal(refresh(tablet, tokens.refreshToken, sessionKey));
    expect(err.reason).toBe('REFRESH_FAILED');
    await expectReason(tablet.deviceId, 'session_revoked');
    // Not for users, and not across tenants.
    expect(
      (
        await refusal(
          auth.RevokeSessions({ tenantId, userId: alice.userId, reason: 'x' }, bearer(alice.token)),
        )
      ).code,
    ).toBe(status.PERMISSION_DENIED);
  });
});

describe('attacks on key sign-in', () => {
  it('admits exactly one of 200 concurrent submissions of one signed request', async () => {
    const request = await signInRequest(laptop, aliceOnLaptop);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, () => auth.SignInWithKey({ request })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(reasonOf(r.reason)).toBe('SIGN_IN_FAILED');
    await settles(async () => {
      const reasons = await failureReasons(laptop.deviceId);
      expect(reasons.filter((r) => r === 'nonce_unknown_or_used').length).toBeGreaterThanOrEqual(
        199,
      );
    }, 20_000);
  });

  it.each([
    [
      'a nonce only in the outer request',
      () => signInRequest(laptop, aliceOnLaptop, { innerNonce: null }),
      'nonce_unknown_or_used',
    ],
    [
      'a nonce issued for another device',
      async () => signInRequest(laptop, aliceOnLaptop, { nonce: await nonceFor(tablet) }),
      'nonce_unknown_or_used',
    ],
    [
      "a user assertion signed by another user's key",
      () => signInRequest(laptop, bobOnLaptop, { iss: alice.userId }),
      'bad_user_signature',
    ],
    [
      'a credential of another device',
      () => signInRequest(laptop, aliceOnTablet),
      'credential_device_mismatch',
    ],
    [
      'an expired user assertion',
      () => {
        const iat = Math.floor(Date.now() / 1000) - 900;
        return signInRequest(laptop, aliceOnLaptop, { iat, exp: iat + 120 });
      },
      'assertion_expired',
    ],
    [
      'a user assertion for another audience',
      () => signInRequest(laptop, aliceOnLaptop, { userAud: 'https://elsewhere.example' }),
      'audience_mismatch',
    ],
    [
      'a request signed by a key that is not the device key',
      async () => {
        const other = (await webcrypto.subtle.generateKey(EC, true, [
          'sign',
          'verify',
        ])) as webcrypto.CryptoKeyPair;
        return signInRequest(laptop, aliceOnLaptop, { deviceKey: other.privateKey });
      },
      'bad_device_signature',
    ],
    [
      'a user assertion with alg none',
      async () => {
        const nonce = await nonceFor(laptop);
        const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const now = Math.floor(Date.now() / 1000);
        const unsigned = `${b64({ alg: 'none', kid: aliceOnLaptop.credentialId })}.${b64({
          iss: alice.userId,
          aud: ISSUER,
          iat: now,
          exp: now + 60,
          request_nonce: nonce,
        })}.`;
        return new SignJWT({ tid: tenantId, nonce, user_assertion: unsigned })
          .setProtectedHeader({ alg: 'ES256', kid: laptop.deviceId })
          .setSubject(laptop.deviceId)
          .setAudience(ISSUER)
          .setIssuedAt()
          .sign(laptop.keys.privateKey);
      },
      'bad_user_signature',
    ],
  ])('refuses %s', async (_what, make, reason) => {
    const err = await refusal(auth.SignInWithKey({ request: await make() }));
    expect(err).toEqual({ code: status.UNAUTHENTICATED, reason: 'SIGN_IN_FAILED' });
    await expectReason(laptop.deviceId, reason);
  });

  it('refuses an outer request with alg none as malformed, and garbage as INVALID_ARGUMENT', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', kid: laptop.deviceId })}.${b64({
      tid: tenantId,
      sub: laptop.deviceId,
      aud: ISSUER,
      iat: Math.floor(Date.now() / 1000),
      nonce: await nonceFor(laptop),
    })}.`;
    expect((await refusal(auth.SignInWithKey({ request: none }))).reason).toBe('SIGN_IN_FAILED');
    await expectReason(laptop.deviceId, 'malformed_request');
    const garbage = await refusal(auth.SignInWithKey({ request: 'not-a-jws' }));
    expect(garbage.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('refresh signs last', () => {
  // An in-process replica with a spy on its token issuer (see auth-replica.ts).
  let replica: INestApplicationContext;
  let service: KeySignInService;
  let issuer: TokenIssuer;

  beforeAll(async () => {
    replica = await startAuthReplica();
    service = replica.get(KeySignInService);
    issuer = replica.get(TokenIssuer);
  }, 120_000);

  afterAll(async () => {
    jest.restoreAllMocks();
    await replica?.close();
  });

  it('lets the PRT rotation decide before any signature: racing refreshes of one PRT sign once', async () => {
    const { tokens, sessionKeyJwe } = await signInWithKey(tablet, aliceOnTablet);
    const sessionKey = await sessionKeyOf(tablet, sessionKeyJwe);
    const proofs = await Promise.all(
      Array.from({ length: 8 }, () => refreshProof(tablet, sessionKey)),
    );
    const accessSigns = jest.spyOn(issuer, 'issueAccessToken');
    const idSigns = jest.spyOn(issuer, 'issueIdToken');
    const results = await Promise.allSettled(
      proofs.map((proof) => service.refresh({ refreshToken: tokens.refreshToken, proof })),
    );
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(won).toHaveLength(1);
    // One rotation, one pair of signatures: the seven refreshes that lost signed nothing.
    expect(accessSigns).toHaveBeenCalledTimes(1);
    expect(idSigns).toHaveBeenCalledTimes(1);
    // The refresh event names the access token that was returned.
    const { jti } = decodeJwt(won[0]!.tokens.accessToken);
    await settles(async () => {
      const refreshed = await outboxEvents('dev.latchkey.auth.token.refreshed.v1', {
        sessionId: tokens.sessionId,
      });
      expect(refreshed.map((e) => e.data.tokenId)).toEqual([jti]);
    });
  });
});

describe('revocation takes effect at once, on every auth instance', () => {
  let second: Awaited<ReturnType<typeof startAuthInstance>>;
  let secondAuth: UnaryClient;

  beforeAll(async () => {
    second = await startAuthInstance('auth-second');
    secondAuth = second.auth;
  }, 90_000);

  afterAll(async () => {
    await second?.stop();
  });

  /** Milliseconds from `change` until both instances refuse sign-ins of `key` on `device`. */
  async function refusedAfter(device: Device, key: UserKey, change: () => Promise<unknown>) {
    const instances = [auth, secondAuth];
    // Warm both instances' caches (the second one's listener may still be joining).
    for (const client of instances)
      await settles(async () => {
        await signInWithKey(device, key, { client });
      }, 30_000);
    await change();
    const t0 = Date.now();
    const refusedAt = await Promise.all(
      instances.map(async (client) => {
        for (;;) {
          const request = await signInRequest(device, key, { client });
          const ok = await client.SignInWithKey({ request }).then(
            () => true,
            () => false,
          );
          if (!ok) return Date.now() - t0;
          if (Date.now() - t0 > 10_000) throw new Error('still admitted 10 s after the change');
        }
      }),
    );
    return Math.max(...refusedAt);
  }

  it('refuses a revoked key within 1 s of RevokeCredential', async () => {
    const carol = await person('carol');
    const key = await provision(tablet, carol);
    const ms = await refusedAfter(tablet, key, () =>
      provisioning.revokeCredential!(
        { tenantId, credentialId: key.credentialId, reason: 'test' },
        bearer(adminToken),
      ),
    );
    expect(ms).toBeLessThan(1000);
    await expectReason(tablet.deviceId, 'credential_not_active');
  });

  it('refuses sign-in and refresh on a disabled device within 1 s', async () => {
    const dave = await person('dave');
    const device = await registerDevice('ec');
    const key = await provision(device, dave);
    const { tokens, sessionKeyJwe } = await signInWithKey(device, key);
    const sessionKey = await sessionKeyOf(device, sessionKeyJwe);
    const ms = await refusedAfter(device, key, () =>
      registration.disableDevice!(
        { tenantId, deviceId: device.deviceId, reason: 'stolen' },
        bearer(adminToken),
      ),
    );
    expect(ms).toBeLessThan(1000);
    const err = await refusal(refresh(device, tokens.refreshToken, sessionKey));
    expect(err.reason).toBe('REFRESH_FAILED');
    await expectReason(device.deviceId, 'device_not_active');
  });
});

describe('an auth instance on a private Redis', () => {
  const redis = new PrivateRedis(6380 + (Number(process.env.JEST_WORKER_ID ?? 1) % 5));
  let instance: Awaited<ReturnType<typeof startAuthInstance>>;
  let privateAuth: UnaryClient;

  beforeAll(async () => {
    redis.stop();
    redis.start();
    await redis.up();
    instance = await startAuthInstance('auth-key-redis', { REDIS_URL: redis.url });
    privateAuth = instance.auth;
  }, 90_000);

  afterAll(async () => {
    await instance?.stop();
    redis.stop();
  });

  it('fails closed with UNAVAILABLE while Redis is down and recovers by itself', async () => {
    const request = await signInRequest(tablet, aliceOnTablet, { client: privateAuth });
    redis.stop();
    const err = await refusal(privateAuth.SignInWithKey({ request }));
    expect(err.code).toBe(status.UNAVAILABLE);
    redis.start();
    await redis.up();
    await settles(async () => {
      const { tokens } = await signInWithKey(tablet, aliceOnTablet, { client: privateAuth });
      expect(tokens.accessToken).toMatch(/^ey/);
    }, 15_000);
  });
});
