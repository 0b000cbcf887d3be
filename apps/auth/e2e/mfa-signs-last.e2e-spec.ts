/**
 * CompleteMfa signs the access token only once the factor is accepted: a refused
 * code (a TOTP step already used) must never cost an ES256 signature, and the
 * sign-in event names the token that is then returned. Checked on a second auth
 * replica in this process — the service's own modules on the test profile's real
 * PostgreSQL, Redis and Kafka, as a scaled-out replica runs — with a spy on its
 * token issuer: signatures of the running service cannot be counted from outside
 * without racing the other suites' sign-ins.
 */
import 'reflect-metadata';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { createLogger, DomainError, loadConfig, ServiceKitModule } from '@latchkey/service-kit';
import { decodeJwt } from 'jose';
import { AuthModule } from '../src/auth.module';
import { authConfigShape } from '../src/config';
import { SignInService } from '../src/sign-in/sign-in.service';
import { TokenIssuer } from '../src/signing-keys/token-issuer';
import { authEnv, freshCode, outboxEvents, seedAccount, settles, unique } from './support';

const SOURCE_IP = '198.51.100.23';

let replica: INestApplicationContext;
let signIn: SignInService;
let issuer: TokenIssuer;

beforeAll(async () => {
  const config = loadConfig(authConfigShape, authEnv());
  const logger = createLogger('latchkey-auth-e2e-replica', 'warn');
  @Module({
    imports: [
      ServiceKitModule.forRoot({ service: 'auth', config, logger }),
      AuthModule.forRoot(config),
    ],
  })
  class ReplicaModule {}
  replica = await NestFactory.createApplicationContext(ReplicaModule, { logger: false });
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
