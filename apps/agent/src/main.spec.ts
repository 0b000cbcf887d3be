import { status } from '@grpc/grpc-js';
import { KeystoreError } from './keystore/software-keystore';
import { explain, run } from './main';
import { UsageError } from './server/endpoints';
import { ServiceCallError } from './server/service-clients';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

describe('latchkey-agent command line', () => {
  it('refuses an unknown command or option with the usage and status 2', async () => {
    const a = capture();
    expect(await run(['fly'], a.io)).toBe(2);
    expect(a.err.join('')).toMatch(/unknown command "fly"[\s\S]*usage: latchkey-agent/);
    const b = capture();
    expect(await run(['login', '--pin', '1234'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/--pin/);
  });

  it('prints the usage for --help with status 0', async () => {
    const a = capture();
    expect(await run(['--help'], a.io)).toBe(0);
    expect(a.out.join('')).toMatch(/audit verify/);
  });

  it.each([
    [
      new ServiceCallError(
        'registration',
        'RegisterDevice',
        status.UNAVAILABLE,
        undefined,
        'No connection established',
      ),
      3,
      /cannot reach the registration service/,
    ],
    [
      new ServiceCallError('auth', 'SignInWithKey', status.UNAUTHENTICATED, 'SIGN_IN_FAILED', 'x'),
      1,
      /key may be revoked, the device disabled/,
    ],
    [
      new ServiceCallError(
        'auth',
        'SignInWithPassword',
        status.UNAUTHENTICATED,
        'SIGN_IN_FAILED',
        'x',
      ),
      1,
      /wrong username or password/,
    ],
    [
      new ServiceCallError(
        'provisioning',
        'BeginProvisioning',
        status.FAILED_PRECONDITION,
        'DEVICE_INACTIVE',
        'x',
      ),
      1,
      /device is disabled or deleted/,
    ],
    [
      new ServiceCallError('auth', 'RefreshWithPrt', status.UNAUTHENTICATED, 'REFRESH_FAILED', 'x'),
      1,
      /run `latchkey-agent login`/,
    ],
    [new KeystoreError('PIN_LOCKED', 'the PIN is locked'), 4, /PIN is locked/],
    [new KeystoreError('KEY_DESTROYED', 'destroyed'), 4, /destroyed/],
    [new UsageError('needs --tenant'), 2, /needs --tenant/],
  ])('explains %s clearly (status %i)', (err, exitCode, message) => {
    const e = explain(err);
    expect(e.exitCode).toBe(exitCode);
    expect(e.message).toMatch(message);
  });
});
