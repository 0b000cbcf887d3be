/**
 * latchkey_sign_in_attempts_total on auth's /metrics: what the chart's
 * LatchkeySignInFailureRatioHigh alert divides. Other suites sign in against the
 * same auth at the same time, so each count is checked to grow by at least ours.
 */
import { randomUUID } from 'node:crypto';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { httpBase, reasonOf, type UnaryClient } from '@latchkey/testing';
import { authClient, seedAccount, signIn } from './support';

let auth: UnaryClient;
beforeAll(() => {
  auth = authClient('AuthService');
});
afterAll(() => auth?.close());

async function attempts(): Promise<Map<string, number>> {
  const text = await (await fetch(`${httpBase('auth')}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(
    /^latchkey_sign_in_attempts_total\{stage="(\w+)",outcome="(\w+)"\} (\d+)$/gm,
  ))
    counts.set(`${m[1]} ${m[2]}`, Number(m[3]));
  return counts;
}

it('counts every sign-in step by stage and outcome', async () => {
  const account = await seedAccount(PLATFORM_TENANT_ID, `metrics-${randomUUID()}`, ['operator']);
  const before = await attempts();

  await signIn(auth, account);
  const wrong = await auth
    .SignInWithPassword({
      tenant: PLATFORM_TENANT_ID,
      username: account.username,
      password: `${account.password}-wrong`,
    })
    .catch((e: unknown) => e);
  expect(reasonOf(wrong)).toBe('SIGN_IN_FAILED');
  const noTenant = await auth
    .SignInWithPassword({ tenant: `none-${randomUUID()}`, username: 'x', password: 'y' })
    .catch((e: unknown) => e);
  expect(reasonOf(noTenant)).toBe('SIGN_IN_FAILED');
  // Key sign-in for a tenant that does not exist; a refresh with a token auth never issued.
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jws = `${b64({ alg: 'ES256' })}.${b64({ tid: randomUUID(), sub: randomUUID() })}.c2ln`;
  const noTenantKey = await auth.SignInWithKey({ request: jws }).catch((e: unknown) => e);
  expect(reasonOf(noTenantKey)).toBe('SIGN_IN_FAILED');
  const badRefresh = await auth
    .RefreshWithPrt({ refreshToken: 'not-a-refresh-token', proof: 'x' })
    .catch((e: unknown) => e);
  expect((badRefresh as { code?: number }).code).toBeDefined();
  const badTicket = await auth
    .CompleteMfa({ mfaTicket: 'not-a-ticket', code: '123456' })
    .catch((e: unknown) => e);
  expect(reasonOf(badTicket)).toBe('MFA_FAILED');

  const after = await attempts();
  const grew = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  expect({
    'password success': grew('password success') >= 1,
    'otp success': grew('otp success') >= 1,
    'password bad_credentials': grew('password bad_credentials') >= 1,
    'password unknown_tenant': grew('password unknown_tenant') >= 1,
    'otp mfa_ticket_invalid': grew('otp mfa_ticket_invalid') >= 1,
    'key unknown_tenant': grew('key unknown_tenant') >= 1,
    'refresh refresh_token_invalid': grew('refresh refresh_token_invalid') >= 1,
  }).toEqual({
    'password success': true,
    'otp success': true,
    'password bad_credentials': true,
    'password unknown_tenant': true,
    'otp mfa_ticket_invalid': true,
    'key unknown_tenant': true,
    'refresh refresh_token_invalid': true,
  });
}, 90_000);
