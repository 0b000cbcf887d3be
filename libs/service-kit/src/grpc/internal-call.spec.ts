import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { DomainError } from '../errors/domain-error';
import { loadConfig } from '../config/config';
import {
  InternalCallSigner,
  InternalCallVerifier,
  internalCallSignerConfigShape,
  internalCallVerifierConfigShape,
  parseInternalCallSigningKeys,
  parseInternalCallTrustedKeys,
} from './internal-call';

type Jwk = Record<string, string>;

/** A fresh Ed25519 key pair as JWKs under `kid`. */
function keyPair(kid: string): { priv: Jwk; pub: Jwk } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    priv: { ...(privateKey.export({ format: 'jwk' }) as Jwk), kid },
    pub: { ...(publicKey.export({ format: 'jwk' }) as Jwk), kid },
  };
}
const set = (...keys: Jwk[]) => JSON.stringify({ keys });

const AUTH_OLD = keyPair('auth-1');
const AUTH = keyPair('auth-2');
const PROVISIONING = keyPair('prov-1');
const AUDIT = keyPair('audit-1');

/** The DomainError a promise rejects with (fails the test if it resolves). */
async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

const configError = (shape: Record<string, unknown>, name: string, value: string): string => {
  try {
    loadConfig(shape as typeof internalCallSignerConfigShape, { [name]: value });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`${name} was accepted`);
};

describe('INTERNAL_CALL_SIGNING_KEYS', () => {
  it('reads a JWK Set of private Ed25519 keys, the first one signing', () => {
    const keys = parseInternalCallSigningKeys(set(AUTH.priv, AUTH_OLD.priv));
    expect([...keys.keys()]).toEqual(['auth-2', 'auth-1']);
    expect(keys.get('auth-2')!.type).toBe('private');
  });

  const { x: _x, ...noX } = AUTH.priv;
  it.each([
    ['not JSON', 'auth-2:secret', /is not valid JSON/],
    ['no keys array', JSON.stringify({ kid: 'a' }), /must be a JWK Set/],
    ['an empty set', set(), /holds no key/],
    ['a key without kid', set({ ...AUTH.priv, kid: '' }), /needs a "kid"/],
    ['a kid twice', set(AUTH.priv, { ...AUTH_OLD.priv, kid: 'auth-2' }), /"auth-2" appears twice/],
    ['a public key', set(AUTH.pub), /"auth-2" is not a private key \(no "d"\)/],
    ['an EC key', set({ ...AUTH.priv, kty: 'EC', crv: 'P-256' }), /must be an Ed25519 key/],
    ['another alg', set({ ...AUTH.priv, alg: 'HS256' }), /only "EdDSA"/],
    ['no public part', set(noX), /no public part/],
    ['an x of another key', set({ ...AUTH.priv, x: AUTH_OLD.pub.x! }), /not the public half/],
    ['a malformed d', set({ ...AUTH.priv, d: 'AAAA' }), /not a valid Ed25519 private key/],
  ])('refuses %s at start-up, without echoing key material', (_what, value, message) => {
    expect(() => parseInternalCallSigningKeys(value)).toThrow(message);
    const text = configError(internalCallSignerConfigShape, 'INTERNAL_CALL_SIGNING_KEYS', value);
    expect(text).toContain('INTERNAL_CALL_SIGNING_KEYS');
    expect(text).toMatch(message);
    expect(text).not.toContain(AUTH.priv.d);
    expect(text).not.toContain('secret');
  });
});

describe('INTERNAL_CALL_TRUSTED_KEYS', () => {
  it("reads each caller's JWK Set of public keys", () => {
    const trusted = parseInternalCallTrustedKeys(
      JSON.stringify({
        auth: { keys: [AUTH.pub, AUTH_OLD.pub] },
        provisioning: { keys: [PROVISIONING.pub] },
      }),
    );
    expect([...trusted.keys()]).toEqual(['auth', 'provisioning']);
    expect([...trusted.get('auth')!.keys()]).toEqual(['auth-2', 'auth-1']);
    expect(trusted.get('auth')!.get('auth-2')!.type).toBe('public');
  });

  it.each([
    ['not JSON', '{', /is not valid JSON/],
    ['an array', '[]', /must be a JSON object/],
    ['no caller', '{}', /names no caller/],
    [
      'a bad caller name',
      JSON.stringify({ 'Auth!': { keys: [AUTH.pub] } }),
      /is not a service name/,
    ],
    ['a bare key', JSON.stringify({ auth: AUTH.pub }), /the keys of auth must be a JWK Set/],
    [
      'a private key',
      JSON.stringify({ auth: { keys: [AUTH.priv] } }),
      /holds a private key \("d"\)/,
    ],
    ['an EC key', JSON.stringify({ auth: { keys: [{ ...AUTH.pub, kty: 'EC' }] } }), /Ed25519/],
    [
      'a malformed x',
      JSON.stringify({ auth: { keys: [{ ...AUTH.pub, x: 'AA' }] } }),
      /not a valid/,
    ],
  ])('refuses %s at start-up, without echoing key material', (_what, value, message) => {
    expect(() => parseInternalCallTrustedKeys(value)).toThrow(message);
    const text = configError(internalCallVerifierConfigShape, 'INTERNAL_CALL_TRUSTED_KEYS', value);
    expect(text).toContain('INTERNAL_CALL_TRUSTED_KEYS');
    expect(text).toMatch(message);
    expect(text).not.toContain(AUTH.priv.d);
  });
});

describe('internal-call tokens', () => {
  let now = Date.parse('2026-11-26T10:00:00Z');
  const clock = () => now;
  const auth = new InternalCallSigner(set(AUTH.priv, AUTH_OLD.priv), 'auth', clock);
  const provisioning = new InternalCallSigner(set(PROVISIONING.priv), 'provisioning', clock);
  const trustedByRegistration = JSON.stringify({
    auth: { keys: [AUTH.pub, AUTH_OLD.pub] },
    provisioning: { keys: [PROVISIONING.pub] },
    audit: { keys: [AUDIT.pub] },
  });
  const registration = new InternalCallVerifier(trustedByRegistration, 'registration', clock);

  /** A token signed with `priv` claiming `claims`, as an attacker holding that key would make it. */
  const signed = (
    priv: Jwk,
    claims: Record<string, unknown>,
    header: Record<string, string> = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({
        alg: 'EdDSA',
        kid: priv.kid!,
        typ: 'latchkey-internal-call+jwt',
        ...header,
      })
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + 300)
      .sign(parseInternalCallSigningKeys(set(priv)).get(priv.kid!)!);

  it('lets a listed caller in and names it', async () => {
    const token = await auth.tokenFor('registration');
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toEqual({
      alg: 'EdDSA',
      kid: 'auth-2',
      typ: 'latchkey-internal-call+jwt',
    });
    await expect(registration.verify(token, ['auth', 'provisioning'])).resolves.toBe('auth');
    await expect(
      registration.verify(await provisioning.tokenFor('registration'), ['auth', 'provisioning']),
    ).resolves.toBe('provisioning');
  });

  it("refuses one service's key used to claim to be another (UNAUTHENTICATED)", async () => {
    // provisioning's genuine key, trusted for provisioning, claiming iss auth: with its own kid…
    const asAuth = await signed(PROVISIONING.priv, { iss: 'auth', aud: 'latchkey:registration' });
    // …and with the kid of auth's key (the verifier must not look the kid up across callers).
    const asAuthKid = await signed(
      { ...PROVISIONING.priv, kid: 'auth-2' },
      { iss: 'auth', aud: 'latchkey:registration' },
    );
    for (const token of [asAuth, asAuthKid]) {
      const err = await refusal(registration.verify(token, ['auth']));
      expect([err.kind, err.reason]).toEqual(['UNAUTHENTICATED', 'INTERNAL_CALL_INVALID']);
    }
    // The same key claiming its own name passes (the refusal above is about the claim).
    await expect(
      registration.verify(
        await signed(PROVISIONING.priv, { iss: 'provisioning', aud: 'latchkey:registration' }),
        ['provisioning'],
      ),
    ).resolves.toBe('provisioning');
  });

  it('refuses a caller the handler does not list (PERMISSION_DENIED)', async () => {
    const token = await new InternalCallSigner(set(AUDIT.priv), 'audit', clock).tokenFor(
      'registration',
    );
    const err = await refusal(registration.verify(token, ['auth', 'provisioning']));
    expect([err.kind, err.reason]).toEqual(['PERMISSION_DENIED', 'INTERNAL_CALLER_NOT_ALLOWED']);
  });

  it('refuses an unknown kid, an untrusted caller, another audience, a wrong typ or alg, tampering (UNAUTHENTICATED)', async () => {
    const claims = { iss: 'auth', aud: 'latchkey:registration' };
    const unknownKid = await signed(keyPair('auth-9').priv, claims);
    const untrusted = await new InternalCallSigner(
      set(keyPair('x-1').priv),
      'stranger',
      clock,
    ).tokenFor('registration');
    const forProvisioning = await auth.tokenFor('provisioning');
    const untyped = await signed(AUTH.priv, claims, { typ: 'JWT' });
    const noIss = await signed(AUTH.priv, { aud: 'latchkey:registration' });
    // An HS256 token "signed" with auth's public key bytes (algorithm confusion).
    const hs256 = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: 'auth-2', typ: 'latchkey-internal-call+jwt' })
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + 300)
      .sign(Buffer.from(AUTH.pub.x!, 'base64url'));
    const good = await auth.tokenFor('registration');
    const [h, p, s] = good.split('.');
    const body = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = [
      h,
      Buffer.from(JSON.stringify({ ...body, iss: 'provisioning' })).toString('base64url'),
      s,
    ].join('.');
    for (const token of [
      unknownKid,
      untrusted,
      forProvisioning,
      untyped,
      noIss,
      hs256,
      forged,
      'not-a-jwt',
    ]) {
      const err = await refusal(registration.verify(token, ['auth', 'provisioning', 'stranger']));
      expect([err.kind, err.reason]).toEqual(['UNAUTHENTICATED', 'INTERNAL_CALL_INVALID']);
    }
  });

  it('verifies tokens of an older key while the callee still lists it (rotation), not after', async () => {
    const before = await new InternalCallSigner(set(AUTH_OLD.priv), 'auth', clock).tokenFor(
      'registration',
    );
    await expect(registration.verify(before, ['auth'])).resolves.toBe('auth');
    const rotated = new InternalCallVerifier(
      JSON.stringify({ auth: { keys: [AUTH.pub] } }),
      'registration',
      clock,
    );
    await expect(rotated.verify(await auth.tokenFor('registration'), ['auth'])).resolves.toBe(
      'auth',
    );
    const err = await refusal(rotated.verify(before, ['auth']));
    expect(err.reason).toBe('INTERNAL_CALL_INVALID');
  });

  it('reuses a token for minutes, renews it before it expires, and refuses an expired one', async () => {
    const first = await auth.tokenFor('registration');
    now += 3 * 60_000;
    expect(await auth.tokenFor('registration')).toBe(first);
    now += 90_000; // 4.5 minutes after: inside the last minute, a new one
    const second = await auth.tokenFor('registration');
    expect(second).not.toBe(first);
    await expect(registration.verify(second, ['auth'])).resolves.toBe('auth');
    now += 10 * 60_000; // the first is long expired, also for a verifier that checked it before
    const err = await refusal(registration.verify(first, ['auth']));
    expect(err.reason).toBe('INTERNAL_CALL_INVALID');
  });

  it('refuses to sign without a private key', () => {
    expect(
      () =>
        new InternalCallSigner(
          parseInternalCallTrustedKeys(JSON.stringify({ auth: { keys: [AUTH.pub] } })).get('auth')!,
          'auth',
        ),
    ).toThrow(/needs a private key/);
  });
});
