/**
 * The identity provider end to end (real PostgreSQL, Redis, Kafka and the built
 * auth service): tenants and users administered with access tokens, password +
 * TOTP sign-in, lockout, tokens validated from OIDC discovery only, events.
 */
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { AccessTokenVerifier } from '@latchkey/service-kit';
import { httpBase, reasonOf, type UnaryClient } from '@latchkey/testing';
import { status } from '@grpc/grpc-js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { totpCode } from '../src/totp/totp';
import {
  authClient,
  authDb,
  bearer,
  freshCode,
  outboxEvents,
  seedAccount,
  settles,
  signIn,
  unique,
} from './support';

const http = httpBase('auth');
let auth: UnaryClient;
let admin: UnaryClient;
let operatorToken: string;
let tenantA: { tenantId: string; name: string };
let tenantB: { tenantId: string; name: string };
let adminA: string;
let adminB: string;

async function post(path: string, body: unknown, token?: string) {
  const res = await fetch(`${http}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function createTenant(name: string, lockout?: object) {
  const r = await admin.CreateTenant(
    { name, displayName: name, ...(lockout ? { lockoutPolicy: lockout } : {}) },
    bearer(operatorToken),
  );
  const t = r.tenant as { tenantId: string; name: string };
  return t;
}

async function createUser(tenantId: string, token: string, user: object) {
  const r = await admin.CreateUser({ tenantId, user }, bearer(token));
  return r.user as { userId: string; username: string; roles: string[]; totpEnrolled: boolean };
}

/** Full first sign-in of a new user: password, TOTP enrolment, first code. */
async function enrollAndSignIn(tenantId: string, username: string, password: string) {
  const first = await auth.SignInWithPassword({ tenant: tenantId, username, password });
  expect(first.totpEnrollmentRequired).toBe(true);
  const enrol = await auth.EnrollTotp({ mfaTicket: first.mfaTicket });
  expect(enrol.otpauthUri).toMatch(/^otpauth:\/\/totp\/.+secret=/);
  const secret = enrol.secret as string;
  const done = await auth.CompleteMfa({
    mfaTicket: first.mfaTicket,
    code: await freshCode(secret),
  });
  return { token: done.accessToken as string, secret };
}

beforeAll(async () => {
  auth = authClient('AuthService');
  admin = authClient('AdminService');
  const operator = await seedAccount(PLATFORM_TENANT_ID, unique('op'), ['operator']);
  operatorToken = await signIn(auth, operator);
  tenantA = await createTenant(unique('tenant-a'), {
    threshold: 5,
    windowSeconds: 60,
    durationSeconds: 12,
  });
  tenantB = await createTenant(unique('tenant-b'), { threshold: 7 });
  expect((tenantB as unknown as { lockoutPolicy: object }).lockoutPolicy).toEqual({
    threshold: 7,
    windowSeconds: 900,
    durationSeconds: 900,
  });
  const a = await seedAccount(tenantA.tenantId, 'admin-a', ['admin']);
  const b = await seedAccount(tenantB.tenantId, 'admin-b', ['admin']);
  adminA = await signIn(auth, a);
  adminB = await signIn(auth, b);
}, 120_000);

afterAll(() => {
  auth?.close();
  admin?.close();
});

describe('access tokens', () => {
  it('carry iss, sub, aud, exp, iat, auth_time, amr pwd+otp, tid and roles', () => {
    const claims = decodeJwt(adminA);
    expect(claims).toMatchObject({
      iss: http,
      aud: 'latchkey',
      tid: tenantA.tenantId,
      roles: ['admin'],
      amr: ['pwd', 'otp'],
    });
    for (const c of ['sub', 'exp', 'iat', 'auth_time', 'jti'] as const)
      expect(claims[c]).toBeDefined();
  });

  it('validate with jose using only the discovery URL, before and after a key rotation', async () => {
    const discovery = (await (await fetch(`${http}/.well-known/openid-configuration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    expect(discovery.issuer).toBe(http);
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const verify = (t: string) =>
      jwtVerify(t, jwks, { issuer: discovery.issuer, audience: 'latchkey', algorithms: ['ES256'] });

    const before = await signIn(auth, await seedAccount(tenantA.tenantId, unique('rot'), ['user']));
    await expect(verify(before)).resolves.toBeDefined();

    const rotated = await admin.RotateSigningKey({}, bearer(operatorToken));
    expect(rotated.previousKid).toBe((await verify(before)).protectedHeader.kid);

    const after = await signIn(auth, await seedAccount(tenantA.tenantId, unique('rot'), ['user']));
    const verified = await verify(after);
    expect(verified.protectedHeader.kid).toBe(rotated.kid);
    expect(verified.protectedHeader.kid).not.toBe(rotated.previousKid);
    // The token signed before the rotation still validates during the overlap.
    await expect(verify(before)).resolves.toBeDefined();
    // So does the guard every other service uses (service-kit, JWKS cached, refetched on a new kid).
    const guard = new AccessTokenVerifier({
      issuer: http,
      audience: 'latchkey',
      jwksUrl: discovery.jwks_uri,
    });
    await expect(guard.verify(before)).resolves.toMatchObject({ amr: ['pwd', 'otp'] });
    await expect(guard.verify(after)).resolves.toMatchObject({ tenantId: tenantA.tenantId });
    await settles(async () => {
      const ev = await outboxEvents('dev.latchkey.auth.signing_key.rotated.v1', {
        kid: rotated.kid as string,
      });
      expect(ev).toEqual([expect.objectContaining({ published: true })]);
    });
  }, 90_000);

  it('rejects admin calls without a token, with a bad token, or without the role', async () => {
    const call = (md?: ReturnType<typeof bearer>) =>
      admin.ListUsers({ tenantId: tenantA.tenantId }, md);
    await expect(call()).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    await expect(call(bearer(`${adminA}x`))).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    const user = await seedAccount(tenantA.tenantId, unique('plain'), ['user']);
    const userToken = await signIn(auth, user);
    const err = await call(bearer(userToken)).catch((e: unknown) => e);
    expect(reasonOf(err)).toBe('ROLE_REQUIRED');
    const r = await fetch(`${http}/v1/tenants/${tenantA.tenantId}/users`);
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
  }, 60_000);
});

describe('tenant isolation', () => {
  it('an admin of tenant A cannot read or change tenant B or its users', async () => {
    const victim = await createUser(tenantB.tenantId, adminB, {
      username: unique('victim'),
      displayName: 'Victim',
      password: 'a long enough password',
    });
    const attempts = [
      admin.ListUsers({ tenantId: tenantB.tenantId }, bearer(adminA)),
      admin.GetUser({ tenantId: tenantB.tenantId, userId: victim.userId }, bearer(adminA)),
      admin.DisableUser({ tenantId: tenantB.tenantId, userId: victim.userId }, bearer(adminA)),
      admin.DeleteUser({ tenantId: tenantB.tenantId, userId: victim.userId }, bearer(adminA)),
      admin.SetUserPassword(
        { tenantId: tenantB.tenantId, userId: victim.userId, password: 'attacker chosen password' },
        bearer(adminA),
      ),
      admin.CreateUser(
        { tenantId: tenantB.tenantId, user: { username: 'intruder', displayName: 'x' } },
        bearer(adminA),
      ),
      // The tenant id in the path is the victim's while the user belongs to it: still refused.
      admin.GetTenant({ tenantId: tenantB.tenantId }, bearer(adminA)),
      admin.CreateTenant({ name: unique('nope'), displayName: 'x' }, bearer(adminA)),
    ];
    for (const p of attempts) {
      const err = await p.catch((e: unknown) => e);
      expect((err as { code: number }).code).toBe(status.PERMISSION_DENIED);
    }
    const httpAttempt = await post(
      `/v1/tenants/${tenantB.tenantId}/users/${victim.userId}/disable`,
      {},
      adminA,
    );
    expect(httpAttempt.status).toBe(403);
    expect(httpAttempt.body.reason).toBe('TENANT_MISMATCH');
    // Nothing changed in tenant B.
    const still = await admin.GetUser(
      { tenantId: tenantB.tenantId, userId: victim.userId },
      bearer(adminB),
    );
    expect(still.user).toMatchObject({ state: 'USER_STATE_ACTIVE' });
    const list = await admin.ListUsers({ tenantId: tenantB.tenantId }, bearer(adminB));
    expect((list.users as { username: string }[]).map((u) => u.username)).not.toContain('intruder');
  }, 60_000);
});

describe('users', () => {
  it('creates, disables, enables and deletes a user, each with its event', async () => {
    const username = unique('Carol').toLowerCase();
    const password = 'correct horse battery staple';
    const carol = await createUser(tenantA.tenantId, adminA, {
      username: username.toUpperCase(),
      displayName: 'Carol',
      email: 'carol@example.com',
      password,
    });
    expect(carol).toMatchObject({ username, roles: ['user'], totpEnrolled: false });
    const dup = await createUser(tenantA.tenantId, adminA, { username, displayName: 'x' }).catch(
      (e) => e,
    );
    expect(reasonOf(dup)).toBe('USERNAME_TAKEN');

    const { secret } = await enrollAndSignIn(tenantA.tenantId, username, password);
    await admin.DisableUser({ tenantId: tenantA.tenantId, userId: carol.userId }, bearer(adminA));
    const refused = await auth
      .SignInWithPassword({ tenant: tenantA.name, username, password })
      .catch((e: unknown) => e);
    expect(reasonOf(refused)).toBe('SIGN_IN_FAILED');
    await admin.EnableUser({ tenantId: tenantA.tenantId, userId: carol.userId }, bearer(adminA));
    await expect(
      signIn(auth, { tenantId: tenantA.name, username, password, totpSecret: secret }),
    ).resolves.toMatch(/^ey/);
    // An admin resets the password: the old one stops working, the new one works.
    const newPassword = 'a brand new passphrase';
    await admin.SetUserPassword(
      { tenantId: tenantA.tenantId, userId: carol.userId, password: newPassword },
      bearer(adminA),
    );
    const old = await auth
      .SignInWithPassword({ tenant: tenantA.name, username, password })
      .catch((e: unknown) => e);
    expect(reasonOf(old)).toBe('SIGN_IN_FAILED');
    await expect(
      signIn(auth, { tenantId: tenantA.name, username, password: newPassword, totpSecret: secret }),
    ).resolves.toMatch(/^ey/);
    // At rest: a scrypt hash with its parameters, and the TOTP secret encrypted with the KEK.
    const rows = await authDb<{ password_hash: string; secret_encrypted: string }>(
      `SELECT u.password_hash, f.secret_encrypted FROM users u JOIN totp_factors f ON f.user_id = u.id WHERE u.id = $1`,
      [carol.userId],
    );
    expect(rows[0]!.password_hash).toMatch(/^\$scrypt\$ln=\d+,r=8,p=1\$/);
    expect(rows[0]!.secret_encrypted).toMatch(/^kek1\./);
    expect(rows[0]!.secret_encrypted).not.toContain(secret);

    await admin.DeleteUser({ tenantId: tenantA.tenantId, userId: carol.userId }, bearer(adminA));
    const gone = await admin
      .GetUser({ tenantId: tenantA.tenantId, userId: carol.userId }, bearer(adminA))
      .catch((e: unknown) => e);
    expect(reasonOf(gone)).toBe('USER_NOT_FOUND');

    await settles(async () => {
      for (const what of ['created', 'disabled', 'enabled', 'deleted']) {
        const ev = await outboxEvents(`dev.latchkey.auth.user.${what}.v1`, {
          userId: carol.userId,
        });
        expect(ev).toEqual([expect.objectContaining({ published: true })]);
      }
      const mfa = await outboxEvents('dev.latchkey.auth.mfa.enrolled.v1', { userId: carol.userId });
      expect(mfa).toHaveLength(1);
      const failed = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', {
        userId: carol.userId,
      });
      expect(failed.map((e) => e.data.reason)).toEqual(['user_disabled', 'bad_credentials']);
      const ok = await outboxEvents('dev.latchkey.auth.sign_in.succeeded.v1', {
        userId: carol.userId,
      });
      expect(ok.map((e) => e.data.method)).toEqual(['pwd+otp', 'pwd+otp', 'pwd+otp']);
    });
    const all = JSON.stringify(await outboxEvents('dev.latchkey.auth.sign_in.succeeded.v1'));
    expect(all).not.toContain(password);
    expect(all).not.toContain(secret);
  }, 120_000);

  it('imports users all or none, and refuses bad input without changing anything', async () => {
    const base = unique('imp');
    const ok = await admin.ImportUsers(
      {
        tenantId: tenantA.tenantId,
        users: [
          { username: `${base}-1`, displayName: 'One' },
          { username: `${base}-2`, displayName: 'Two', roles: ['admin'] },
        ],
      },
      bearer(adminA),
    );
    expect((ok.users as unknown[]).length).toBe(2);
    const clash = await admin
      .ImportUsers(
        {
          tenantId: tenantA.tenantId,
          users: [
            { username: `${base}-3`, displayName: 'Three' },
            { username: `${base}-1`, displayName: 'Dup' },
          ],
        },
        bearer(adminA),
      )
      .catch((e: unknown) => e);
    expect(reasonOf(clash)).toBe('USERNAME_TAKEN');
    const bad = [
      { username: 'has space', displayName: 'x' },
      { username: 'x'.repeat(200), displayName: 'x' },
      { username: `${base}-4`, displayName: '' },
      { username: `${base}-5`, displayName: 'x', password: 'short' },
      { username: `${base}-6`, displayName: 'x', roles: ['operator'] },
      { username: `${base}-7`, displayName: 'x', email: 'not-an-email' },
    ];
    for (const user of bad) {
      const err = await admin
        .CreateUser({ tenantId: tenantA.tenantId, user }, bearer(adminA))
        .catch((e: unknown) => e);
      expect((err as { code: number }).code).toBe(status.INVALID_ARGUMENT);
    }
    const list = await admin.ListUsers(
      { tenantId: tenantA.tenantId, pageSize: 500 },
      bearer(adminA),
    );
    const names = (list.users as { username: string }[]).map((u) => u.username);
    expect(names.filter((n) => n.startsWith(base)).sort()).toEqual([`${base}-1`, `${base}-2`]);
    const http400 = await post(`/v1/tenants/not-a-uuid/users`, { username: 'x' }, operatorToken);
    expect(http400.status).toBe(400);
  }, 60_000);
});

describe('sign-in', () => {
  it('refuses a TOTP code that was already accepted', async () => {
    const acct = await seedAccount(tenantA.tenantId, unique('reuse'), ['user']);
    const code = await freshCode(acct.totpSecret);
    const t1 = await auth.SignInWithPassword({
      tenant: acct.tenantId,
      username: acct.username,
      password: acct.password,
    });
    await auth.CompleteMfa({ mfaTicket: t1.mfaTicket, code });
    const t2 = await auth.SignInWithPassword({
      tenant: acct.tenantId,
      username: acct.username,
      password: acct.password,
    });
    const err = await auth.CompleteMfa({ mfaTicket: t2.mfaTicket, code }).catch((e: unknown) => e);
    expect(reasonOf(err)).toBe('MFA_FAILED');
    // The ticket was single-use: the wrong attempt burned it.
    const again = await auth
      .CompleteMfa({ mfaTicket: t2.mfaTicket, code: totpCode(acct.totpSecret) })
      .catch((e: unknown) => e);
    expect(reasonOf(again)).toBe('MFA_FAILED');
    await settles(async () => {
      const ev = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', { userId: acct.userId });
      expect(ev.map((e) => e.data.reason)).toEqual(['otp_reused']);
    });
  }, 60_000);

  it('locks an account after 5 failures, answers like for an unknown user, and unlocks after the window', async () => {
    const acct = await seedAccount(tenantA.tenantId, unique('lock'), ['user']);
    const attempt = async (username: string, password: string) => {
      const t = Date.now();
      const err = await auth
        .SignInWithPassword({ tenant: tenantA.tenantId, username, password })
        .catch((e: unknown) => e);
      return { err: err as { code: number; details: string }, ms: Date.now() - t };
    };
    const wrong = [];
    for (let i = 0; i < 5; i++) wrong.push(await attempt(acct.username, 'wrong password!!'));
    const lockedAt = Date.now();
    const locked = [];
    const unknown = [];
    for (let i = 0; i < 3; i++) {
      locked.push(await attempt(acct.username, acct.password));
      unknown.push(await attempt(unique('nobody'), 'whatever password'));
    }
    for (const r of [...wrong, ...locked, ...unknown]) {
      expect(r.err.code).toBe(status.UNAUTHENTICATED);
      expect(reasonOf(r.err)).toBe('SIGN_IN_FAILED');
      expect(r.err.details).toBe(wrong[0]!.err.details);
    }
    // Similar timing: each path spends one scrypt hash (medians; generous for a busy CI machine).
    const median = (rs: { ms: number }[]) =>
      rs.map((r) => r.ms).sort((a, b) => a - b)[Math.floor(rs.length / 2)]!;
    const medians = [median(wrong), median(locked), median(unknown)];
    expect(Math.max(...medians)).toBeLessThan(Math.min(...medians) * 4 + 100);

    await settles(async () => {
      const ev = await outboxEvents('dev.latchkey.auth.user.locked.v1', { userId: acct.userId });
      expect(ev).toEqual([expect.objectContaining({ published: true })]);
      const failed = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', {
        userId: acct.userId,
      });
      expect(failed.map((e) => e.data.reason)).toEqual([
        ...Array(5).fill('bad_credentials'),
        ...Array(3).fill('user_locked'),
      ]);
    });
    // The tenant's lockout lasts 12 s.
    await new Promise((r) => setTimeout(r, Math.max(0, lockedAt + 12_500 - Date.now())));
    await expect(signIn(auth, acct)).resolves.toMatch(/^ey/);
  }, 60_000);

  it('refuses malformed, oversize and unknown-tenant requests with a reason', async () => {
    const cases: [object, number, string][] = [
      [
        { tenant: '', username: 'a', password: 'b' },
        status.INVALID_ARGUMENT,
        'INVALID_SIGN_IN_REQUEST',
      ],
      [
        { tenant: 'x', username: 'a', password: 'p'.repeat(5000) },
        status.INVALID_ARGUMENT,
        'INVALID_SIGN_IN_REQUEST',
      ],
      [
        { tenant: 'x'.repeat(500), username: 'a', password: 'b' },
        status.INVALID_ARGUMENT,
        'INVALID_SIGN_IN_REQUEST',
      ],
      [
        { tenant: unique('no-such-tenant'), username: 'a', password: 'b' },
        status.UNAUTHENTICATED,
        'SIGN_IN_FAILED',
      ],
    ];
    for (const [req, code, reason] of cases) {
      const err = await auth.SignInWithPassword(req).catch((e: unknown) => e);
      expect((err as { code: number }).code).toBe(code);
      expect(reasonOf(err)).toBe(reason);
    }
    const mfa = await auth
      .CompleteMfa({ mfaTicket: 'nope', code: '123456' })
      .catch((e: unknown) => e);
    expect(reasonOf(mfa)).toBe('MFA_FAILED');
    const viaHttp = await post('/v1/sign-in/password', { tenant: tenantA.name, username: 'x' });
    expect(viaHttp.status).toBe(400);
    expect(viaHttp.body.reason).toBe('INVALID_SIGN_IN_REQUEST');
  });

  it('signs in over HTTPS JSON as well', async () => {
    const acct = await seedAccount(tenantB.tenantId, unique('web'), ['user']);
    const first = await post('/v1/sign-in/password', {
      tenant: tenantB.name,
      username: acct.username,
      password: acct.password,
    });
    expect(first.status).toBe(200);
    expect(first.body.totpEnrollmentRequired).toBe(false);
    const done = await post('/v1/sign-in/mfa', {
      mfaTicket: first.body.mfaTicket,
      code: await freshCode(acct.totpSecret),
    });
    expect(done.status).toBe(200);
    expect(decodeJwt(done.body.accessToken as string)).toMatchObject({
      sub: acct.userId,
      amr: ['pwd', 'otp'],
    });
  }, 60_000);
});
