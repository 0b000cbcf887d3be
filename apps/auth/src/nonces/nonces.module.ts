import { Controller, Module } from '@nestjs/common';
import { authV1, toTimestamp } from '@latchkey/contracts';
import { parseRequest, REDIS } from '@latchkey/service-kit';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { type NoncePurpose, NonceStore } from './nonce-store';

const PURPOSES: Record<string, NoncePurpose> = {
  [authV1.NoncePurpose.NONCE_PURPOSE_SIGN_IN]: 'sign_in',
  [authV1.NoncePurpose.NONCE_PURPOSE_REFRESH]: 'refresh',
  [authV1.NoncePurpose.NONCE_PURPOSE_PROVISIONING]: 'provisioning',
};

const getNonceRequest = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  deviceId: z.string().uuid('must be a UUID'),
  purpose: z.enum(['sign_in', 'refresh', 'provisioning'], {
    errorMap: () => ({ message: 'must be SIGN_IN, REFRESH or PROVISIONING' }),
  }),
});

@Controller()
@authV1.AuthServiceControllerMethods()
export class NoncesGrpcController implements authV1.AuthServiceController {
  constructor(private readonly nonces: NonceStore) {}

  async getNonce(req: authV1.GetNonceRequest): Promise<authV1.GetNonceResponse> {
    const binding = parseRequest(
      getNonceRequest,
      { ...req, purpose: PURPOSES[req.purpose] },
      'INVALID_NONCE_REQUEST',
    );
    const { nonce, expiresAt } = await this.nonces.issue(binding);
    return { nonce, expireTime: toTimestamp(expiresAt) };
  }
}

@Module({
  controllers: [NoncesGrpcController],
  providers: [
    {
      provide: NonceStore,
      useFactory: (redis: Redis, config: AuthConfig) =>
        new NonceStore(redis, config.NONCE_TTL_SECONDS),
      inject: [REDIS, AUTH_CONFIG],
    },
  ],
  exports: [NonceStore],
})
export class NoncesModule {}
