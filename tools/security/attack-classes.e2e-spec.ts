/**
 * Security regression tests: one `describe` per known attack class against a
 * passwordless identity platform, each run end to end against the four
 * running services (the e2e profile's instances, plus one extra auth instance
 * for password spraying). Every case asserts the precise refusal (gRPC status
 * and `latchkey-reason`, or HTTP status and problem+json reason), the reason
 * auth records in its `sign_in.failed` event where there is one, and that
 * nothing changed: a fingerprint of every service's stored state
 * (tools/fuzz/support/state.ts) and the specific state the attack aims at
 * (sessions, nonces, TOTP steps, lockout counters, certificates).
 *
 * This file is the index of attack classes; where a class is covered more
 * deeply elsewhere, the describe names that test.
 *
 *   npx jest tools/security --selectProjects e2e
 */
import { execFileSync } from 'node:child_process';
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { decodeJwt, decodeProtectedHeader, exportJWK, type JWK, SignJWT } from 'jose';
import Redis from 'ioredis';
import { transportConfigShape } from '@latchkey/service-kit';
import {
  authClient,
  type CsrKeys,
  deviceMaterial,
  EC,
  freePort,
  newDeviceKeys,
  httpBase,
  launcher,
  startExtraService,
  TEST_PROFILE,
  type ExtraService,
} from '@latchkey/testing';
import { DEFAULT_TOTP, totpCode } from '../../apps/auth/src/totp/totp';
import {
  authDb,
  authEnv,
  outboxEvents,
  PrivateRedis,
  seedAccount,
  unique,
} from '../../apps/auth/e2e/support';
import { contracts } from '../fuzz/support/contracts';
import { callRaw, closeSuite, healthy, withBearer } from '../fuzz/support/probes';
import { StateProbe } from '../fuzz/support/state';
import { bearer, clients, type Clients } from '../fuzz/support/tenants';
import {
  type Device,
  expectNewFailures,
  failureReasons,
  forgedDeviceCertificate,
  hmacJws,
  ISSUER,
  type Key,
  outerRequest,
  type Person,
  refusal,
  SecurityTenant,
  unsignedJws,
  userAssertionWith,
} from './support/enrolment';
import { slowClient } from './support/slow-client';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const SIGN_IN_FAILED = { code: status.UNAUTHENTICATED, reason: 'SIGN_IN_FAILED' };

let c: Clients;
let t: SecurityTenant;
let probe: StateProbe;
let alice: Person;
let bob: Person;
let laptop: Device;
let tablet: Device;
let aliceOnLaptop: Key;
let bobOnLaptop: Key;
let aliceOnTablet: Key;
let redis: Redis;

/** Password spraying gets an auth instance of its own: a low rate limit, on a private Redis. */
let sprayRedis: PrivateRedis | undefined;
let sprayAuth: Promise<ExtraService>;
const SPRAY_RATE_LIMIT = 8;

async function startSprayAuth(): Promise<ExtraService> {
  sprayRedis = new PrivateRedis(await freePort());
  sprayRedis.start();
  await sprayRedis.up();
  return startExtraService('auth', {
    name: 'security-spray',
    env: { REDIS_URL: sprayRedis.url, SIGN_IN_RATE_LIMIT_PER_MINUTE: String(SPRAY_RATE_LIMIT) },
  });
}

beforeAll(async () => {
  sprayAuth = startSprayAuth();
  sprayAuth.catch(() => undefined); // awaited (and reported) by the spraying tests
  c = clients();
  redis = new Redis(authEnv().REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 });
  // Three failures lock an account for five minutes in this tenant.
  t = await SecurityTenant.create(c, 'security', {
    threshold: 3,
    windowSeconds: 300,
    durationSeconds: 300,
  });
  [alice, bob, laptop, tablet] = await Promise.all([
    t.person('alice'),
    t.person('bob'),
    t.device('laptop'),
    t.device('tablet'),
  ]);
  aliceOnLaptop = await t.provision(laptop, alice);
  bobOnLaptop = await t.provision(laptop, bob);
  aliceOnTablet = await t.provision(tablet, alice);
  // Each key signs in once: the fixture works, and auth's lookups in registration and
  // provisioning are warm (a cold first lookup on a loaded machine can exceed its deadline).
  for (const key of [aliceOnLaptop, bobOnLaptop, aliceOnTablet])
    await c.auth.SignInWithKey!({ request: await t.signInRequest(key) });
  probe = await StateProbe.open();
}, 180_000);

afterAll(async () => {
  await closeSuite(c, probe);
  redis?.disconnect();
  await (await sprayAuth.catch(() => undefined))?.stop();
  sprayRedis?.stop();
});

const fingerprint = () => probe.fingerprint([t.tenantId]);

async function sessionCount(device: Device): Promise<number> {
  const rows = await authDb<{ n: string }>(
    'SELECT count(*) AS n FROM key_sessions WHERE device_id = $1',
    [device.deviceId],
  );
  return Number(rows[0]!.n);
}

const reasonsOf = (device: Device) => failureReasons({ deviceId: device.deviceId });

/**
 * Every `[what, request, reason]` attack on `key`'s device is refused with SIGN_IN_FAILED and
 * recorded with its reason (a `sign_in.failed` event about the device); the stored state and the
 * device's sessions are unchanged. Then `key`'s real request with `nonce` signs in, once, as its
 * person: the refusals used nothing up and swapped nothing.
 */
async function expectSignInAttacksRefused(
  key: Key,
  nonce: string,
  attacks: [what: string, request: string, reason: string][],
): Promise<void> {
  const reasonsBefore = (await reasonsOf(key.device)).length;
  const sessionsBefore = await sessionCount(key.device);
  const before = await fingerprint();
  for (const [what, request] of attacks) {
    const err = await refusal(c.auth.SignInWithKey!({ request }));
    expect({ what, code: err.code, reason: err.reason }).toEqual({ what, ...SIGN_IN_FAILED });
  }
  await expectNewFailures(
    { deviceId: key.device.deviceId },
    reasonsBefore,
    attacks.map((a) => a[2]),
  );
  expect(await fingerprint()).toEqual(before);
  expect(await sessionCount(key.device)).toBe(sessionsBefore);
  const ok = await c.auth.SignInWithKey!({ request: await t.signInRequest(key, nonce) });
  expect(decodeJwt((ok.tokens as { accessToken: string }).accessToken).sub).toBe(key.person.userId);
  expect(await sessionCount(key.device)).toBe(sessionsBefore + 1);
}

/** The claims of a user assertion as the agent makes them, for `key`, over `nonce`. */
const assertionClaims = (key: Key, nonce: string) => ({
  iss: key.person.userId,
  request_nonce: nonce,
});

/**
 * The laptop's sign-in request with `nonce` around a user assertion of `claims`, signed by
 * `signer`'s key under the credential id `kid` (by default its own).
 */
async function laptopRequest(
  nonce: string,
  signer: Key,
  claims: Record<string, unknown>,
  kid: string = signer.credential.credentialId,
): Promise<string> {
  return outerRequest(laptop, nonce, await userAssertionWith(signer.privateKey, claims, kid));
}

/** The claims of the tenant admin's access token with both roles, issued now for 10 minutes: what a forger signs. */
function escalatedAdminClaims() {
  const now = Math.floor(Date.now() / 1000);
  return { ...decodeJwt(t.admin.token), roles: ['admin', 'operator'], iat: now, exp: now + 600 };
}

const pem = (k: ReturnType<typeof createPublicKey>) =>
  Buffer.from(k.export({ type: 'spki', format: 'pem' }) as string);

// ---------------------------------------------------------------------------------------------

describe('JWT alg confusion and alg none', () => {
  // Deeper: apps/auth/e2e/key-sign-in.e2e-spec.ts "refuses a user assertion with alg none" and
  // "refuses an outer request with alg none as malformed"; libs/crypto device-assertion-verifier.spec.ts
  // "refuses alg none and garbage"; provisioning credential-key.spec.ts (proof of possession).

  /** One write over gRPC and one read over HTTP per service, all behind the access-token guard. */
  const guarded = () => [
    {
      app: 'auth',
      grpc: (token: string) =>
        c.admin.CreateUser!(
          { tenantId: t.tenantId, user: { username: unique('forged'), displayName: 'Forged' } },
          bearer(token),
        ),
      http: `/v1/tenants/${t.tenantId}/users`,
    },
    {
      app: 'registration',
      grpc: (token: string) =>
        c.registration.CreateJoinToken!(
          { tenantId: t.tenantId, maxUses: 100, ttlSeconds: 3600 },
          bearer(token),
        ),
      http: `/v1/tenants/${t.tenantId}/devices`,
    },
    {
      app: 'provisioning',
      grpc: (token: string) =>
        c.provisioning.UpdateKeyPolicy!(
          { policy: { tenantId: t.tenantId, allowedAlgorithms: ['RS256'], maxKeysPerUser: 1000 } },
          bearer(token),
        ),
      http: `/v1/tenants/${t.tenantId}/credentials`,
    },
    {
      app: 'audit',
      grpc: (token: string) => c.audit.QueryAuditEvents!({ tenantId: t.tenantId }, bearer(token)),
      http: `/v1/tenants/${t.tenantId}/audit-events`,
    },
  ];

  /** Every guarded call refuses `token` with INVALID_ACCESS_TOKEN (gRPC 16, HTTP 401 problem+json). */
  async function expectRefusedEverywhere(what: string, token: string): Promise<void> {
    for (const g of guarded()) {
      const err = await refusal(g.grpc(token));
      expect({ what, app: g.app, code: err.code, reason: err.reason }).toEqual({
        what,
        app: g.app,
        code: status.UNAUTHENTICATED,
        reason: 'INVALID_ACCESS_TOKEN',
      });
      const res = await fetch(`${httpBase(g.app)}${g.http}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await res.json()) as { reason?: string; status?: number };
      expect({
        what,
        app: g.app,
        status: res.status,
        type: res.headers.get('content-type'),
        reason: body.reason,
      }).toEqual({
        what,
        app: g.app,
        status: 401,
        type: expect.stringContaining('application/problem+json'),
        reason: 'INVALID_ACCESS_TOKEN',
      });
    }
  }

  it("refuses access tokens with alg none, HS256 keyed with auth's public key, or another key under auth's kid, in all four services", async () => {
    // The real admin token works on every guarded read (so a refusal below is the signature check).
    for (const g of guarded()) {
      const res = await fetch(`${httpBase(g.app)}${g.http}`, {
        headers: { authorization: `Bearer ${t.admin.token}` },
      });
      expect({ app: g.app, status: res.status }).toEqual({ app: g.app, status: 200 });
    }
    const { kid } = decodeProtectedHeader(t.admin.token);
    const jwks = (await (await fetch(`${ISSUER}/.well-known/jwks.json`)).json()) as {
      keys: JWK[];
    };
    const jwk = jwks.keys.find((k) => k.kid === kid)!;
    const authPublic = createPublicKey({
      key: jwk as unknown as Record<string, string>,
      format: 'jwk',
    });
    const claims = escalatedAdminClaims();
    const header = { kid, typ: 'at+jwt' };
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const [realHeader, , realSignature] = t.admin.token.split('.');
    const forged: [string, string][] = [
      ['alg none', unsignedJws(header, claims)],
      ['alg none, signature kept', `${unsignedJws(header, claims)}${realSignature}`],
      ['HS256 keyed with the SPKI PEM', await hmacJws(header, claims, pem(authPublic))],
      [
        'HS256 keyed with the SPKI DER',
        await hmacJws(header, claims, authPublic.export({ type: 'spki', format: 'der' })),
      ],
      ['HS256 keyed with the JWK', await hmacJws(header, claims, Buffer.from(JSON.stringify(jwk)))],
      [
        'ES256 by another key',
        await new SignJWT(claims).setProtectedHeader({ ...header, alg: 'ES256' }).sign(ec),
      ],
      [
        'RS256 by an RSA key',
        await new SignJWT(claims).setProtectedHeader({ ...header, alg: 'RS256' }).sign(rsa),
      ],
      [
        "auth's signature over other claims",
        `${realHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${realSignature}`,
      ],
    ];
    const before = await fingerprint();
    for (const [what, token] of forged) await expectRefusedEverywhere(what, token);
    expect(await fingerprint()).toEqual(before);
  });

  it("refuses key sign-in requests with HS256 keyed by the device's or the user's public key, or alg none; the nonce stays unused", async () => {
    const nonce = await t.nonce(laptop);
    const inner = await userAssertionWith(
      aliceOnLaptop.privateKey,
      assertionClaims(aliceOnLaptop, nonce),
      aliceOnLaptop.credential.credentialId,
    );
    const now = Math.floor(Date.now() / 1000);
    const outerClaims = {
      tid: t.tenantId,
      sub: laptop.deviceId,
      aud: ISSUER,
      iat: now,
      nonce,
      user_assertion: inner,
    };
    const devicePublic = createPublicKey(laptop.privateKey);
    const userClaims = {
      ...assertionClaims(aliceOnLaptop, nonce),
      aud: ISSUER,
      iat: now,
      exp: now + 120,
    };
    const userKid = { kid: aliceOnLaptop.credential.credentialId };
    const attacks: [string, string, string][] = [
      [
        "outer HS256 keyed with the device key's PEM",
        await hmacJws({ kid: laptop.deviceId }, outerClaims, pem(devicePublic)),
        'malformed_request',
      ],
      ['outer alg none', unsignedJws({ kid: laptop.deviceId }, outerClaims), 'malformed_request'],
      [
        "inner HS256 keyed with the user key's PEM",
        await outerRequest(
          laptop,
          nonce,
          await hmacJws(userKid, userClaims, pem(aliceOnLaptop.publicKey)),
        ),
        'bad_user_signature',
      ],
      [
        'inner alg none',
        await outerRequest(laptop, nonce, unsignedJws(userKid, userClaims)),
        'bad_user_signature',
      ],
    ];
    // The refusals did not use the nonce up: the real request with it signs in, once.
    await expectSignInAttacksRefused(aliceOnLaptop, nonce, attacks);
  });

  it('refuses a PRT proof with alg none or HS256 under a guessable key, and does not rotate the PRT', async () => {
    const ok = await c.auth.SignInWithKey!({ request: await t.signInRequest(aliceOnTablet) });
    const tokens = ok.tokens as { refreshToken: string; sessionId: string };
    const row = () =>
      authDb<Record<string, unknown>>(
        'SELECT token_hash, previous_token_hash, status, last_used_at FROM key_sessions WHERE id = $1',
        [tokens.sessionId],
      );
    const stored = await row();
    const nonce = await t.nonce(tablet, 'NONCE_PURPOSE_REFRESH');
    const now = Math.floor(Date.now() / 1000);
    const claims = { tid: t.tenantId, sub: tablet.deviceId, aud: ISSUER, iat: now, nonce };
    const ctx = { ctx: randomBytes(32).toString('base64url') };
    const proofs: [string, string][] = [
      ['alg none', unsignedJws(ctx, claims)],
      ['HS256 keyed with zeros', await hmacJws(ctx, claims, new Uint8Array(32))],
      [
        "HS256 keyed with the device key's PEM",
        await hmacJws(ctx, claims, pem(createPublicKey(tablet.privateKey))),
      ],
    ];
    const reasonsBefore = (await reasonsOf(tablet)).length;
    for (const [what, proof] of proofs) {
      const err = await refusal(
        c.auth.RefreshWithPrt!({ refreshToken: tokens.refreshToken, proof }),
      );
      expect({ what, code: err.code, reason: err.reason }).toEqual({
        what,
        code: status.UNAUTHENTICATED,
        reason: 'REFRESH_FAILED',
      });
    }
    await expectNewFailures({ deviceId: tablet.deviceId }, reasonsBefore, [
      'bad_session_proof',
      'bad_session_proof',
      'bad_session_proof',
    ]);
    expect(await row()).toEqual(stored);
  });
});

// ---------------------------------------------------------------------------------------------

describe('kid injection (and jku, x5u, jwk, x5c header injection)', () => {
  // Not covered elsewhere (the fuzz suites send random JWS headers, not these).
  let attacker: Server;
  let attackerHits: string[];
  let attackerUrl: string;

  beforeAll(async () => {
    attackerHits = [];
    attacker = createServer((req, res) => {
      attackerHits.push(req.url ?? '');
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => attacker.close(() => resolve())));

  async function jwksFetches(): Promise<number> {
    const text = await (await fetch(`${httpBase('auth')}/metrics`)).text();
    const m =
      /latchkey_requests_total\{[^}]*method="GET \/\.well-known\/jwks\.json"[^}]*\} (\d+)/.exec(
        text,
      );
    if (!m) throw new Error("auth's /metrics does not count JWKS requests");
    return Number(m[1]);
  }

  it('refuses access tokens whose header points at keys the attacker controls, fetches nothing from the attacker, and does not refetch JWKS per unknown kid', async () => {
    const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const attackerJwk = { ...(await exportJWK(keys.publicKey)), kid: 'attacker', alg: 'ES256' };
    const cert = await forgedDeviceCertificate(t.tenantId, t.admin.userId, keys);
    const { kid: authKid } = decodeProtectedHeader(t.admin.token);
    const claims = escalatedAdminClaims();
    const sign = (header: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ ...header, alg: 'ES256' }).sign(keys.privateKey);
    const headers: [string, Record<string, unknown>][] = [
      ['kid path traversal', { kid: '../../../../../../dev/null' }],
      ['kid SQL', { kid: "' OR '1'='1' --" }],
      ['kid URL', { kid: `${attackerUrl}/kid.json` }],
      ['kid long', { kid: 'k'.repeat(1000) }],
      ['kid empty', { kid: '' }],
      ['jku', { kid: 'attacker', jku: `${attackerUrl}/jwks.json` }],
      ['x5u', { kid: 'attacker', x5u: `${attackerUrl}/cert.pem` }],
      ['embedded jwk', { jwk: attackerJwk }],
      ["embedded jwk under auth's kid", { kid: authKid, jwk: attackerJwk }],
      ['x5c', { x5c: [cert] }],
    ];
    const services = ['auth', 'registration', 'provisioning', 'audit'];
    const routes: Record<string, string> = {
      auth: `/v1/tenants/${t.tenantId}/users`,
      registration: `/v1/tenants/${t.tenantId}/devices`,
      provisioning: `/v1/tenants/${t.tenantId}/credentials`,
      audit: `/v1/tenants/${t.tenantId}/audit-events`,
    };
    const before = await fingerprint();
    const fetchesBefore = await jwksFetches();
    for (const [what, header] of headers) {
      const token = await sign(header);
      const grpc = await refusal(
        c.registration.CreateJoinToken!({ tenantId: t.tenantId, maxUses: 1 }, bearer(token)),
      );
      expect({ what, code: grpc.code, reason: grpc.reason }).toEqual({
        what,
        code: status.UNAUTHENTICATED,
        reason: 'INVALID_ACCESS_TOKEN',
      });
      for (const app of services) {
        const res = await fetch(`${httpBase(app)}${routes[app]}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        const body = (await res.json()) as { reason?: string };
        expect({ what, app, status: res.status, reason: body.reason }).toEqual({
          what,
          app,
          status: 401,
          reason: 'INVALID_ACCESS_TOKEN',
        });
      }
    }
    // No request ever reached the attacker's server; the three services that fetch auth's
    // JWKS did not refetch it per unknown kid (a 5 s cool-down): at most twice each.
    expect(attackerHits).toEqual([]);
    expect((await jwksFetches()) - fetchesBefore).toBeLessThanOrEqual(6);
    expect(await fingerprint()).toEqual(before);
  });

  it("refuses key sign-in requests naming another device's key or certificate, or injecting into the credential kid; the nonce stays unused", async () => {
    const nonce = await t.nonce(laptop);
    const claims = assertionClaims(aliceOnLaptop, nonce);
    const inner = await userAssertionWith(
      aliceOnLaptop.privateKey,
      claims,
      aliceOnLaptop.credential.credentialId,
    );
    const stranger = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const forgedCert = await forgedDeviceCertificate(t.tenantId, laptop.deviceId, stranger);
    const tabletCert = new x509.X509Certificate(tablet.certificatePem);
    const attacks: [string, string, string][] = [
      [
        "outer kid naming the tablet's key",
        await outerRequest(laptop, nonce, inner, { kid: tablet.deviceId }, tablet.keys.privateKey),
        'malformed_request',
      ],
      [
        'outer kid path traversal',
        await outerRequest(laptop, nonce, inner, { kid: '../../devices/x' }),
        'malformed_request',
      ],
      [
        'outer x5c: a self-signed certificate for the laptop',
        await outerRequest(laptop, nonce, inner, { x5c: [forgedCert] }, stranger.privateKey),
        'bad_device_signature',
      ],
      [
        "outer x5c: the tablet's real certificate",
        await outerRequest(
          laptop,
          nonce,
          inner,
          { x5c: [Buffer.from(tabletCert.rawData).toString('base64')] },
          tablet.keys.privateKey,
        ),
        'bad_device_signature',
      ],
      [
        'credential kid SQL',
        await laptopRequest(nonce, aliceOnLaptop, claims, "' OR '1'='1"),
        'bad_user_signature',
      ],
      [
        'credential kid path traversal',
        await laptopRequest(nonce, aliceOnLaptop, claims, '../../credentials/x'),
        'bad_user_signature',
      ],
      [
        "credential kid of bob's key, signed by alice's",
        await laptopRequest(nonce, aliceOnLaptop, claims, bobOnLaptop.credential.credentialId),
        'bad_user_signature',
      ],
    ];
    await expectSignInAttacksRefused(aliceOnLaptop, nonce, attacks);
  });
});

// ---------------------------------------------------------------------------------------------

describe('nonce replay and cross-device nonce use', () => {
  // Deeper: apps/auth/e2e/key-sign-in.e2e-spec.ts "admits exactly one of 200 concurrent
  // submissions of one signed request" and "refuses a nonce issued for another device";
  // apps/auth/e2e/nonces-and-outages.e2e-spec.ts (binding, expiry, 200 concurrent consumers).

  it('admits one of 20 concurrent copies of a signed request, and refuses it replayed later', async () => {
    const sessionsBefore = await sessionCount(laptop);
    const reasonsBefore = (await reasonsOf(laptop)).length;
    const request = await t.signInRequest(bobOnLaptop);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => c.auth.SignInWithKey!({ request })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const before = await fingerprint();
    const replay = await refusal(c.auth.SignInWithKey!({ request }));
    expect({ code: replay.code, reason: replay.reason }).toEqual(SIGN_IN_FAILED);
    for (const r of results)
      if (r.status === 'rejected') {
        const e = await refusal(Promise.reject(r.reason));
        expect({ code: e.code, reason: e.reason }).toEqual(SIGN_IN_FAILED);
      }
    await expectNewFailures(
      { deviceId: laptop.deviceId },
      reasonsBefore,
      Array(20).fill('nonce_unknown_or_used'),
    );
    expect(await sessionCount(laptop)).toBe(sessionsBefore + 1);
    expect(await fingerprint()).toEqual(before);
  });

  it("refuses another device's nonce (and burns it), and a refresh nonce for sign-in", async () => {
    const laptopSessions = await sessionCount(laptop);
    const tabletSessions = await sessionCount(tablet);
    const laptopReasons = (await reasonsOf(laptop)).length;
    const tabletReasons = (await reasonsOf(tablet)).length;
    const tabletNonce = await t.nonce(tablet);
    const refreshNonce = await t.nonce(laptop, 'NONCE_PURPOSE_REFRESH');
    const before = await fingerprint();
    for (const request of [
      await t.signInRequest(aliceOnLaptop, tabletNonce),
      await t.signInRequest(aliceOnLaptop, refreshNonce),
      // The tablet itself, too late: the nonce was presented with another binding and is gone.
      await t.signInRequest(aliceOnTablet, tabletNonce),
    ]) {
      const err = await refusal(c.auth.SignInWithKey!({ request }));
      expect({ code: err.code, reason: err.reason }).toEqual(SIGN_IN_FAILED);
    }
    await expectNewFailures({ deviceId: laptop.deviceId }, laptopReasons, [
      'nonce_unknown_or_used',
      'nonce_unknown_or_used',
    ]);
    await expectNewFailures({ deviceId: tablet.deviceId }, tabletReasons, [
      'nonce_unknown_or_used',
    ]);
    expect(await sessionCount(laptop)).toBe(laptopSessions);
    expect(await sessionCount(tablet)).toBe(tabletSessions);
    expect(await fingerprint()).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------

describe('user-assertion substitution (CVE-2023-35348 class)', () => {
  // The nonce must be inside what the user key signed (ARCHITECTURE.md, key sign-in). Deeper:
  // apps/auth/e2e/key-sign-in.e2e-spec.ts "refuses a nonce only in the outer request", "a user
  // assertion signed by another user's key", "a credential of another device".

  it("refuses a captured user assertion in a new request, one without the nonce, bob's key speaking for alice, and alice's key from another device", async () => {
    // Alice signs in on the laptop; the attacker (the laptop's device key, e.g. bob's session on
    // the shared laptop) captured her request.
    const captured = await t.signInRequest(aliceOnLaptop);
    await c.auth.SignInWithKey!({ request: captured });
    const capturedAssertion = decodeJwt(captured).user_assertion as string;
    const nonce = await t.nonce(laptop);
    const asAlice = { iss: alice.userId, request_nonce: nonce };
    const attacks: [string, string, string][] = [
      [
        "alice's captured assertion, a fresh nonce outside",
        await outerRequest(laptop, nonce, capturedAssertion),
        'nonce_unknown_or_used',
      ],
      [
        "alice's assertion without request_nonce",
        await laptopRequest(nonce, aliceOnLaptop, { iss: alice.userId }),
        'nonce_unknown_or_used',
      ],
      [
        "bob's key claiming to be alice",
        await laptopRequest(nonce, bobOnLaptop, asAlice),
        'bad_user_signature',
      ],
      [
        "bob's key under alice's kid",
        await laptopRequest(nonce, bobOnLaptop, asAlice, aliceOnLaptop.credential.credentialId),
        'bad_user_signature',
      ],
      [
        "alice's tablet key in the laptop's request",
        await laptopRequest(nonce, aliceOnTablet, assertionClaims(aliceOnTablet, nonce)),
        'credential_device_mismatch',
      ],
    ];
    // Bob's own sign-in with that nonce still works, as bob: nothing was used up or swapped.
    await expectSignInAttacksRefused(bobOnLaptop, nonce, attacks);
  });
});

// ---------------------------------------------------------------------------------------------

describe('TOTP replay', () => {
  // Deeper: apps/auth/e2e/identity.e2e-spec.ts "refuses a TOTP code that was already accepted".
  const ticketKey = (ticket: string) =>
    `latchkey:auth:mfa:${createHash('sha256').update(ticket).digest('base64url')}`;

  async function lastUsedStep(userId: string): Promise<string | null> {
    const rows = await authDb<{ s: string | null }>(
      'SELECT last_used_step::text AS s FROM totp_factors WHERE user_id = $1',
      [userId],
    );
    return rows[0]!.s;
  }

  it('refuses an accepted code on a new ticket, and an older code after a newer one; the ticket is burned', async () => {
    const acct = await seedAccount(t.tenantId, unique('totp'), ['user']);
    const password = () =>
      c.auth.SignInWithPassword!({
        tenant: t.tenantId,
        username: acct.username,
        password: acct.password,
      });
    // Codes are accepted within ±1 step: sign in with the next step's code, so that the current
    // step's code is valid in time but older than the step used (whatever the clock does meanwhile).
    const now = Date.now();
    const code = totpCode(acct.totpSecret, DEFAULT_TOTP, now + 30_000);
    const older = totpCode(acct.totpSecret, DEFAULT_TOTP, now);
    const first = await password();
    await c.auth.CompleteMfa!({ mfaTicket: first.mfaTicket, code });
    const step = await lastUsedStep(acct.userId);
    expect(step).toBe(String(Math.floor(now / 30_000) + 1));
    for (const replayed of [code, older]) {
      const ticket = (await password()).mfaTicket as string;
      const err = await refusal(c.auth.CompleteMfa!({ mfaTicket: ticket, code: replayed }));
      expect({ code: err.code, reason: err.reason }).toEqual({
        code: status.UNAUTHENTICATED,
        reason: 'MFA_FAILED',
      });
      expect(await redis.exists(ticketKey(ticket))).toBe(0);
    }
    expect(await lastUsedStep(acct.userId)).toBe(step);
    const failed = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', {
      userId: acct.userId,
    });
    expect(failed.map((e) => e.data.reason)).toEqual(['otp_reused', 'otp_reused']);
    const succeeded = await outboxEvents('dev.latchkey.auth.sign_in.succeeded.v1', {
      userId: acct.userId,
    });
    expect(succeeded).toHaveLength(1);
  });

  it('admits one of two concurrent uses of one code', async () => {
    const acct = await seedAccount(t.tenantId, unique('totp-race'), ['user']);
    const tickets = await Promise.all(
      [1, 2].map(
        async () =>
          (
            await c.auth.SignInWithPassword!({
              tenant: t.tenantId,
              username: acct.username,
              password: acct.password,
            })
          ).mfaTicket as string,
      ),
    );
    const code = totpCode(acct.totpSecret);
    const results = await Promise.allSettled(
      tickets.map((mfaTicket) => c.auth.CompleteMfa!({ mfaTicket, code })),
    );
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const succeeded = await outboxEvents('dev.latchkey.auth.sign_in.succeeded.v1', {
      userId: acct.userId,
    });
    expect(succeeded).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('password spraying against the lockout', () => {
  // Deeper: apps/auth/e2e/identity.e2e-spec.ts "locks an account after 5 failures, answers like
  // for an unknown user"; apps/auth/e2e/nonces-and-outages.e2e-spec.ts "rate-limits password
  // attempts per source".
  const accountKey = (username: string) =>
    `latchkey:auth:{${t.tenantId}:${Buffer.from(username).toString('base64url')}}`;

  it('stops one password tried across many accounts at the per-source limit, over gRPC and HTTP whatever X-Forwarded-For says, without locking anyone', async () => {
    const instance = await sprayAuth;
    const spray = authClient('AuthService', instance.grpc);
    const SPRAYED = 'Winter2025!correct-horse';
    try {
      // Three users whose password is the sprayed one: the attacker's targets.
      const victims = [0, 1, 2].map((i) => unique(`victim${i}`));
      await Promise.all(
        victims.map((username) =>
          c.admin.CreateUser!(
            { tenantId: t.tenantId, user: { username, displayName: 'Victim', password: SPRAYED } },
            bearer(t.admin.token),
          ),
        ),
      );
      const unknown = Array.from({ length: 7 }, (_, i) => unique(`nobody${i}`));
      // Within the limit: two real users (other passwords) and unknown names; then the victims.
      const sprayed = [
        alice.username,
        bob.username,
        ...unknown.slice(0, 6),
        ...victims,
        unknown[6]!,
      ];
      const outcomes: { username: string; code: number | string; reason?: string }[] = [];
      for (const [i, username] of sprayed.entries()) {
        const body = { tenant: t.name, username, password: SPRAYED };
        if (i % 2 === 0) {
          const r = await spray.SignInWithPassword!(body).then(
            () => ({ code: 0 as number, reason: 'MFA_TICKET_ISSUED' }),
            (e: unknown) => refusal(Promise.reject(e)),
          );
          outcomes.push({ username, code: r.code, reason: r.reason });
        } else {
          const res = await fetch(`${instance.http}/v1/sign-in/password`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'x-forwarded-for': `203.0.113.${i}`,
              'x-real-ip': `203.0.113.${i}`,
            },
            body: JSON.stringify(body),
          });
          const problem = (await res.json()) as { reason?: string };
          outcomes.push({ username, code: `http ${res.status}`, reason: problem.reason });
        }
      }
      const failed = (i: number) => (i % 2 === 0 ? status.UNAUTHENTICATED : 'http 401');
      const limited = (i: number) => (i % 2 === 0 ? status.RESOURCE_EXHAUSTED : 'http 429');
      expect(outcomes).toEqual(
        sprayed.map((username, i) =>
          i < SPRAY_RATE_LIMIT
            ? { username, code: failed(i), reason: 'SIGN_IN_FAILED' }
            : { username, code: limited(i), reason: 'SIGN_IN_RATE_LIMITED' },
        ),
      );
      // Lockout counters: one failure per sprayed account (under the threshold of 3), none for the
      // victims (never checked), no account locked; one source counter for all 12 attempts.
      const own = new Redis(sprayRedis!.url, { maxRetriesPerRequest: 1 });
      try {
        for (const [i, username] of sprayed.entries()) {
          const key = accountKey(username);
          expect({
            username,
            fail: await own.get(`${key}:fail`),
            lock: await own.exists(`${key}:lock`),
          }).toEqual({ username, fail: i < SPRAY_RATE_LIMIT ? '1' : null, lock: 0 });
        }
        expect(await own.get('latchkey:auth:rate:{127.0.0.1}')).toBe(String(sprayed.length));
      } finally {
        own.disconnect();
      }
      // The record: each attempt within the limit with its real reason, the first one over it;
      // no account locked.
      const events = await authDb<{ type: string; username: string; reason: string | null }>(
        `SELECT type, data->>'username' AS username, data->>'reason' AS reason FROM outbox_events
          WHERE tenant_id = $1 AND data->>'username' = ANY($2)
            AND type IN ('dev.latchkey.auth.sign_in.failed.v1', 'dev.latchkey.auth.user.locked.v1')
          ORDER BY id`,
        [t.tenantId, sprayed],
      );
      expect(events).toEqual(
        sprayed.slice(0, SPRAY_RATE_LIMIT + 1).map((username, i) => ({
          type: 'dev.latchkey.auth.sign_in.failed.v1',
          username,
          reason:
            i < 2 ? 'bad_credentials' : i < SPRAY_RATE_LIMIT ? 'unknown_user' : 'rate_limited',
        })),
      );
    } finally {
      spray.close();
    }
  });

  it('locks one account after the threshold, and then refuses its right password the same way', async () => {
    const acct = await seedAccount(t.tenantId, unique('brute'), ['user']);
    const attempt = (password: string) =>
      refusal(
        c.auth.SignInWithPassword!({ tenant: t.tenantId, username: acct.username, password }),
      );
    const wrong = [];
    for (let i = 0; i < 3; i++) wrong.push(await attempt(`wrong password ${i}!`));
    const right = await attempt(acct.password);
    for (const r of [...wrong, right])
      expect(r).toEqual({ ...SIGN_IN_FAILED, details: wrong[0]!.details });
    const key = accountKey(acct.username);
    const ttl = await redis.ttl(`${key}:lock`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    expect(await redis.exists(`${key}:fail`)).toBe(0);
    const failed = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', {
      userId: acct.userId,
    });
    expect(failed.map((e) => e.data.reason)).toEqual([
      'bad_credentials',
      'bad_credentials',
      'bad_credentials',
      'user_locked',
    ]);
    const locked = await outboxEvents('dev.latchkey.auth.user.locked.v1', { userId: acct.userId });
    expect(locked.map((e) => e.data.failures)).toEqual([3]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('oversized messages', () => {
  // Deeper (HTTP bodies, every route): tools/fuzz/http-fuzz.e2e-spec.ts.
  const MAX = transportConfigShape.GRPC_MAX_RECEIVE_MESSAGE_BYTES.parse(undefined);

  /** A request (and its serialization) of exactly `size` bytes: `field` padded. */
  function requestOf(id: string, base: Record<string, unknown>, field: string, size: number) {
    const rpc = contracts().rpcs.find((r) => r.id === id)!;
    let n = size;
    for (;;) {
      const request = { ...base, [field]: 'x'.repeat(n) };
      const frame = rpc.definition.requestSerialize(request);
      if (frame.length === size) return { rpc, request, frame };
      n += size - frame.length;
    }
  }

  it('answers a gRPC request one byte over the configured maximum with RESOURCE_EXHAUSTED in every service, which stays healthy', async () => {
    expect(MAX).toBe(4 * 1024 * 1024);
    // atLimit: the reason the service refuses the request at the limit with (INVALID_ARGUMENT).
    const targets = [
      {
        id: 'latchkey.auth.v1.AuthService/SignInWithPassword',
        client: c.auth,
        base: { tenant: t.tenantId, username: 'someone' },
        field: 'password',
        atLimit: 'INVALID_SIGN_IN_REQUEST',
      },
      {
        id: 'latchkey.registration.v1.RegistrationService/RegisterDevice',
        client: c.registration,
        base: { tenantId: t.tenantId, joinToken: 'x' },
        field: 'csrPem',
        atLimit: 'INVALID_DEVICE_REGISTRATION',
      },
      {
        id: 'latchkey.provisioning.v1.ProvisioningService/BeginProvisioning',
        client: c.provisioning,
        base: { deviceId: laptop.deviceId },
        field: 'deviceAssertion',
        token: alice.token,
        atLimit: 'INVALID_PROVISIONING_REQUEST',
      },
      {
        id: 'latchkey.audit.v1.AuditService/QueryAuditEvents',
        client: c.audit,
        base: { tenantId: t.tenantId },
        field: 'subject',
        token: t.admin.token,
        atLimit: 'INVALID_AUDIT_QUERY',
      },
    ];
    const before = await fingerprint();
    for (const target of targets) {
      const over = requestOf(target.id, target.base, target.field, MAX + 1);
      const refused = await callRaw(over.rpc, over.frame, withBearer(target.token));
      expect({ id: target.id, ...refused }).toEqual({
        id: target.id,
        code: status.RESOURCE_EXHAUSTED,
        details: `Received message larger than max (${MAX + 1} vs ${MAX})`,
      });
      // At the limit the message reaches the service, which refuses it for its own reasons.
      const at = requestOf(target.id, target.base, target.field, MAX);
      const handled = await refusal(
        target.client[over.rpc.method]!(at.request, withBearer(target.token)),
      );
      expect({ id: target.id, code: handled.code, reason: handled.reason }).toEqual({
        id: target.id,
        code: status.INVALID_ARGUMENT,
        reason: target.atLimit,
      });
      expect(await healthy(over.rpc.app, over.rpc.service)).toEqual({
        grpc: 'SERVING',
        http: 200,
      });
    }
    expect(await fingerprint()).toEqual(before);
  });

  it('answers an HTTP body over the limit with 400 REQUEST_TOO_LARGE', async () => {
    const res = await fetch(`${httpBase('auth')}/v1/sign-in/password`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: t.name, username: 'x', password: 'p'.repeat(200_000) }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(((await res.json()) as { reason: string }).reason).toBe('REQUEST_TOO_LARGE');
  });
});

// ---------------------------------------------------------------------------------------------

describe('slow clients', () => {
  const HEADERS_MS = transportConfigShape.HTTP_HEADERS_TIMEOUT_MS.parse(undefined);
  const REQUEST_MS = transportConfigShape.HTTP_REQUEST_TIMEOUT_MS.parse(undefined);
  /** Node checks the timeouts every second; the rest is room for a busy machine. */
  const SLACK_MS = 4_000;

  it('cuts off clients that send headers or a body a byte at a time, or nothing, with 408 at the configured timeouts, while serving everyone else', async () => {
    const apps = ['auth', 'registration', 'provisioning', 'audit'];
    const bodyPath: Record<string, string> = {
      auth: '/v1/sign-in/password',
      registration: '/v1/devices',
      provisioning: '/v1/provisioning/challenges',
      audit: `/v1/tenants/${t.tenantId}/audit-retention`,
    };
    const port = (app: string) => launcher.ports(app, TEST_PROFILE).http;
    const slow = apps.flatMap((app) => [
      ...Array.from({ length: 5 }, () => slowClient(port(app), 'headers')),
      ...Array.from({ length: 5 }, () => slowClient(port(app), 'body', { path: bodyPath[app] })),
      ...Array.from({ length: 5 }, () => slowClient(port(app), 'idle')),
    ]);
    // Meanwhile other clients are served as usual, over HTTP and gRPC.
    const latencies: number[] = [];
    const served: string[] = [];
    const until = Date.now() + HEADERS_MS + 2_000;
    while (Date.now() < until) {
      for (const app of apps) {
        const t0 = Date.now();
        const res = await fetch(`${httpBase(app)}/readyz`);
        latencies.push(Date.now() - t0);
        served.push(`${app} ${res.status}`);
      }
      const t0 = Date.now();
      await c.auth.SignInWithKey!({ request: await t.signInRequest(aliceOnTablet) });
      latencies.push(Date.now() - t0);
      served.push('key sign-in');
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(served.filter((s) => !/ 200$|^key sign-in$/.test(s))).toEqual([]);
    expect(Math.max(...latencies)).toBeLessThan(2_000);

    const outcomes = await Promise.all(slow);
    for (const o of outcomes) {
      const limit = o.mode === 'body' ? REQUEST_MS : HEADERS_MS;
      expect({ mode: o.mode, statusLine: o.statusLine, gaveUp: o.gaveUp }).toEqual({
        mode: o.mode,
        statusLine: 'HTTP/1.1 408 Request Timeout',
        gaveUp: false,
      });
      expect(o.closedAfterMs).toBeGreaterThanOrEqual(limit - 100);
      expect(o.closedAfterMs).toBeLessThan(limit + SLACK_MS);
    }
    for (const app of apps) {
      const rpc = contracts().rpcs.find((r) => r.app === app)!;
      expect(await healthy(app, rpc.service)).toEqual({ grpc: 'SERVING', http: 200 });
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

describe('CSR with extra extensions asking for CA or serverAuth rights', () => {
  // Deeper: apps/registration/e2e/registration.e2e-spec.ts "certifies an EC P-256 key whose CSR
  // openssl made" (the extensions every device certificate has).

  it('issues only a clientAuth leaf for the device: no CA, no serverAuth, no requested names', async () => {
    const keys = await newDeviceKeys();
    const material = await deviceMaterial();
    const greedy = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=Latchkey Root CA, O=Latchkey',
      keys: keys as unknown as CsrKeys,
      signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(true, 5, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign |
            x509.KeyUsageFlags.cRLSign |
            x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(
          [
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.codeSigning,
            '2.5.29.37.0', // anyExtendedKeyUsage
          ],
          false,
        ),
        new x509.SubjectAlternativeNameExtension([
          { type: 'dns', value: 'auth.latchkey.example' },
          { type: 'ip', value: '127.0.0.1' },
          { type: 'url', value: `urn:latchkey:tenant:${t.tenantId}:device:${alice.userId}` },
        ]),
      ],
    });
    const caBefore = await c.registration.GetTenantCaCertificate!({ tenantId: t.tenantId });
    const device = await t.device('greedy', {
      ...material,
      keys,
      csrPem: greedy.toString('pem'),
    });
    const cert = new x509.X509Certificate(device.certificatePem);
    expect(cert.subject).toBe(`CN=${device.deviceId}`);
    expect(cert.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature,
    );
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    expect(
      cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => n.toJSON()),
    ).toEqual([
      { type: 'url', value: `urn:latchkey:tenant:${t.tenantId}:device:${device.deviceId}` },
    ]);

    // openssl agrees: a TLS client certificate, not a server one, and not a CA: a certificate
    // the device key signs does not chain to the tenant CA.
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-security-csr-'));
    writeFileSync(join(dir, 'root.pem'), device.chainPem[device.chainPem.length - 1]!);
    writeFileSync(join(dir, 'chain.pem'), device.chainPem.join('\n'));
    writeFileSync(join(dir, 'device.pem'), device.certificatePem);
    const child = await x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: 'CN=auth.latchkey.example',
      issuer: cert.subject,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      publicKey: (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])).publicKey,
      signingKey: keys.privateKey as unknown as CsrKeys['privateKey'],
      signingAlgorithm: EC,
      extensions: [
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'auth.latchkey.example' }]),
      ],
    });
    writeFileSync(join(dir, 'child.pem'), child.toString('pem'));
    const verify = (...args: string[]) => {
      try {
        return execFileSync('openssl', ['verify', ...args], {
          cwd: dir,
          encoding: 'utf8',
          stdio: 'pipe',
        });
      } catch (err) {
        return `FAILED ${String((err as { stdout?: string }).stdout)}${String((err as { stderr?: string }).stderr)}`;
      }
    };
    expect(verify('-purpose', 'sslclient', '-CAfile', 'chain.pem', 'device.pem')).toBe(
      'device.pem: OK\n',
    );
    expect(verify('-purpose', 'sslserver', '-CAfile', 'chain.pem', 'device.pem')).toMatch(
      /^FAILED .*unsuitable certificate purpose/s,
    );
    expect(verify('-CAfile', 'chain.pem', '-untrusted', 'device.pem', 'child.pem')).toMatch(
      /^FAILED .*invalid CA certificate/s,
    );
    // The tenant CA is the one it was.
    expect(await c.registration.GetTenantCaCertificate!({ tenantId: t.tenantId })).toEqual(
      caBefore,
    );
  });
});
