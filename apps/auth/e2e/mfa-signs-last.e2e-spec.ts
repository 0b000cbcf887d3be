/**
 * CompleteMfa signs the access token only once the factor is accepted: a refused
 * code (a TOTP step already used) must never cost an ES256 signature, and the
 * sign-in event names the token that is then returned. Checked on an in-process
 * auth replica (auth-replica.ts) with a spy on its token issuer.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { DomainError } from '@latchkey/service-kit';
import { decodeJwt } from 'jose';
import { SignInService } from '../src/sign-in/sign-in.service';
import { TokenIssuer } from '../src/signing-keys/token-issuer';
import { startAuthReplica } from './auth-replica';
import { freshCode, outboxEvents, seedAccount, settles, unique } from './support';

const SOURCE_IP = '198.51.100.23';

let replica: INestApplicationContext;
let signIn: SignInService;
let issuer: TokenIssuer;

beforeAll(async () => {
  replica = await startAuthReplica();
  signIn = replica.get(SignInService);
  issuer = replica.get(TokenIssuer);
}, 120_000);

afterAll(async () => {
  jest.restoreAllMocks();
  await replica?.close();
});

it('signs nothing for a reused TOTP code, and signs the accepted one under the id its event names', async () => {
  const acct = await seedAccount(PLATFORM_TENANT_ID, unique('signs-last'), ['user']);
  const credentials = { tenant: acct.tenantId, username: acct.username, password: acct.password };
  const signs = jest.spyOn(issuer, 'issueAccessToken');
  const code = await freshCode(acct.totpSecret);

  const first = await signIn.signInWithPassword(credentials, SOURCE_IP);
  const done = await signIn.completeMfa({ mfaTicket: first.mfaTicket, code }, SOURCE_IP);
  expect(signs).toHaveBeenCalledTimes(1);
  const { jti } = decodeJwt(done.accessToken);

  const second = await signIn.signInWithPassword(credentials, SOURCE_IP);
  const refused = await signIn
    .completeMfa({ mfaTicket: second.mfaTicket, code }, SOURCE_IP)
    .catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(DomainError);
  expect((refused as DomainError).reason).toBe('MFA_FAILED');
  // The refusal came from the used-up step (not an earlier check), and cost no signature.
  expect(signs).toHaveBeenCalledTimes(1);

  await settles(async () => {
    const failed = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', {
      userId: acct.userId,
    });
    expect(failed.map((e) => e.data.reason)).toEqual(['otp_reused']);
    const succeeded = await outboxEvents('dev.latchkey.auth.sign_in.succeeded.v1', {
      userId: acct.userId,
    });
    expect(succeeded.map((e) => e.data.tokenId)).toEqual([jti]);
  });
}, 90_000);
