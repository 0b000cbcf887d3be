/** Configuration for validating auth's tokens in any service, plus its provider. */
import type { Provider } from '@nestjs/common';
import { z } from 'zod';
import { SERVICE_CONFIG } from '../bootstrap/service-kit.module';
import { AccessTokenVerifier } from './access-token';

export const tokenValidationConfigShape = {
  /** Issuer of access tokens: auth's public base URL (also the OIDC discovery base). */
  AUTH_ISSUER: z.string().url(),
  /** Defaults to `${AUTH_ISSUER}/.well-known/jwks.json`. */
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_AUDIENCE: z.string().min(1).default('latchkey'),
} as const;

export const accessTokenVerifierProvider: Provider = {
  provide: AccessTokenVerifier,
  useFactory: (config: { AUTH_ISSUER: string; AUTH_JWKS_URL?: string; AUTH_AUDIENCE: string }) =>
    new AccessTokenVerifier({
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      jwksUrl:
        config.AUTH_JWKS_URL ?? `${config.AUTH_ISSUER.replace(/\/$/, '')}/.well-known/jwks.json`,
    }),
  inject: [SERVICE_CONFIG],
};
