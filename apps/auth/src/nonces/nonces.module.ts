/** Single-use nonces over gRPC (AuthService.GetNonce, ConsumeNonce) and HTTPS (POST /v1/nonces). */
import { Body, Controller, HttpCode, Inject, Module, Post } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import { authV1, toTimestamp } from '@latchkey/contracts';
import {
  DomainError,
  NonceStore,
  type NoncePurpose,
  parseRequest,
  REDIS,
  type RedisClient,
} from '@latchkey/service-kit';
import { z } from 'zod';
import { AUTH_CONFIG, type AuthConfig } from '../config';

const PURPOSES: Record<string, NoncePurpose> = {
  [authV1.NoncePurpose.NONCE_PURPOSE_SIGN_IN]: 'sign_in',
  [authV1.NoncePurpose.NONCE_PURPOSE_REFRESH]: 'refresh',
  [authV1.NoncePurpose.NONCE_PURPOSE_PROVISIONING]: 'provisioning',
  sign_in: 'sign_in',
  refresh: 'refresh',
  provisioning: 'provisioning',
  SIGN_IN: 'sign_in',
  REFRESH: 'refresh',
  PROVISIONING: 'provisioning',
};

const binding = {
  tenantId: z.string().uuid('must be a UUID'),
  deviceId: z.string().uuid('must be a UUID'),
  purpose: z.enum(['sign_in', 'refresh', 'provisioning'], {
    errorMap: () => ({ message: 'must be SIGN_IN, REFRESH or PROVISIONING' }),
  }),
};
const getNonceRequest = z.object(binding);
const consumeNonceRequest = z.object({
  ...binding,
  nonce: z.string().min(1, 'is required').max(128),
});

function withPurpose(req: unknown): unknown {
  const r = (req ?? {}) as { purpose?: unknown };
  return { ...r, purpose: PURPOSES[String(r.purpose)] };
}

@Controller()
export class NoncesGrpcController {
  constructor(@Inject(NonceStore) private readonly nonces: NonceStore) {}

  @GrpcMethod('AuthService', 'GetNonce')
  async getNonce(req: authV1.GetNonceRequest): Promise<authV1.GetNonceResponse> {
    const b = parseRequest(getNonceRequest, withPurpose(req), 'INVALID_NONCE_REQUEST');
    const { nonce, expiresAt } = await this.nonces.issue(b);
    return { nonce, expireTime: toTimestamp(expiresAt) };
  }

  @GrpcMethod('AuthService', 'ConsumeNonce')
  async consumeNonce(req: authV1.ConsumeNonceRequest): Promise<authV1.ConsumeNonceResponse> {
    const { nonce, ...b } = parseRequest(
      consumeNonceRequest,
      withPurpose(req),
      'INVALID_NONCE_REQUEST',
    );
    if (!(await this.nonces.consume(nonce, b)))
      throw new DomainError(
        'UNAUTHENTICATED',
        'NONCE_REJECTED',
        'the nonce is unknown, expired or used',
      );
    return {};
  }
}

@Controller('v1/nonces')
export class NoncesHttpController {
  constructor(@Inject(NonceStore) private readonly nonces: NonceStore) {}

  @Post()
  @HttpCode(201)
  async getNonce(@Body() body: unknown) {
    const b = parseRequest(getNonceRequest, withPurpose(body), 'INVALID_NONCE_REQUEST');
    const { nonce, expiresAt } = await this.nonces.issue(b);
    return { nonce, expireTime: expiresAt.toISOString() };
  }
}

@Module({
  controllers: [NoncesGrpcController, NoncesHttpController],
  providers: [
    {
      provide: NonceStore,
      useFactory: (redis: RedisClient, config: AuthConfig) =>
        new NonceStore(redis, config.NONCE_TTL_SECONDS),
      inject: [REDIS, AUTH_CONFIG],
    },
  ],
  exports: [NonceStore],
})
export class NoncesModule {}
