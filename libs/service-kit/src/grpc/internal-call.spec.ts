import { SignJWT } from 'jose';
import { DomainError } from '../errors/domain-error';
import {
  InternalCallSigner,
  InternalCallVerifier,
  internalCallConfigShape,
  parseInternalCallKeys,
} from './internal-call';

const key = (fill: number) => Buffer.alloc(32, fill).toString('base64');
const CURRENT = `ic2:${key(2)}`;
const PREVIOUS = `ic1:${key(1)}`;

/** The DomainError a promise rejects with (fails the test if it resolves). */
async function refusal(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

describe('INTERNAL_CALL_KEYS', () => {
  it('reads "<kid>:<base64 of 32 bytes>" entries, the first one signing', () => {
    const keys = parseInternalCallKeys(`${CURRENT}, ${PREVIOUS}`);
    expect([...keys.keys()]).toEqual(['ic2', 'ic1']);
    expect(Buffer.from(keys.get('ic1')!)).toEqual(Buffer.alloc(32, 1));
  });

  it.each([
    ['', /at least one key/],
    ['ic1', /"<kid>:<base64>"/],
    [`ic1:${Buffer.alloc(16).toString('base64')}`, /must be 32 bytes/],
    [`${PREVIOUS},${PREVIOUS}`, /appears twice/],
    [`bad kid!:${key(1)}`, /"<kid>:<base64>"/],
  ])('refuses %j at start-up', (value, message) => {
    expect(() => parseInternalCallKeys(value)).toThrow(message);
    expect(internalCallConfigShape.INTERNAL_CALL_KEYS.safeParse(value).success).toBe(false);
  });
});

describe('internal-call tokens', () => {
  let now = Date.parse('2026-11-26T10:00:00Z');
  const clock = () => now;
  const auth = new InternalCallSigner(CURRENT, 'auth', clock);
  const registration = new InternalCallVerifier(`${CURRENT},${PREVIOUS}`, 'registration', clock);

  it('lets a listed caller in and names it', async () => {
    const token = await auth.tokenFor('registration');
    await expect(registration.verify(token, ['auth', 'provisioning'])).resolves.toBe('auth');
  });

  it('refuses a caller the handler does not list (PERMISSION_DENIED)', async () => {
    const token = await new InternalCallSigner(CURRENT, 'audit', clock).tokenFor('registration');
    const err = await refusal(registration.verify(token, ['auth', 'provisioning']));
    expect([err.kind, err.reason]).toEqual(['PERMISSION_DENIED', 'INTERNAL_CALLER_NOT_ALLOWED']);
  });

  it('refuses a token for another service, under an unknown key, or tampered (UNAUTHENTICATED)', async () => {
    const forProvisioning = await auth.tokenFor('provisioning');
    const otherKey = await new InternalCallSigner(`ic9:${key(9)}`, 'auth', clock).tokenFor(
      'registration',
    );
    const good = await auth.tokenFor('registration');
    const [h, p, s] = good.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = [
      h,
      Buffer.from(JSON.stringify({ ...claims, iss: 'provisioning' })).toString('base64url'),
      s,
    ].join('.');
    // An ordinary access-token-shaped JWT (no internal-call type) under the right key.
    const untyped = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'ic2' })
      .setIssuer('auth')
      .setAudience('latchkey:registration')
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + 60)
      .sign(new Uint8Array(Buffer.alloc(32, 2)));
    for (const token of [forProvisioning, otherKey, forged, untyped, 'not-a-jwt']) {
      const err = await refusal(registration.verify(token, ['auth', 'provisioning']));
      expect([err.kind, err.reason]).toEqual(['UNAUTHENTICATED', 'INTERNAL_CALL_INVALID']);
    }
  });

  it('verifies tokens of the previous key during a rotation', async () => {
    const before = await new InternalCallSigner(PREVIOUS, 'provisioning', clock).tokenFor(
      'registration',
    );
    await expect(registration.verify(before, ['provisioning'])).resolves.toBe('provisioning');
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
});
