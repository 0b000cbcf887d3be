import { Module } from '@nestjs/common';
import { AccessTokenGuard, AccessTokenVerifier } from '@latchkey/service-kit';
import { createLocalJWKSet } from 'jose';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { SigningKeyRing } from './signing-key-ring';
import { TokenIssuer } from './token-issuer';
import { WellKnownHttpController } from './well-known.http.controller';

@Module({
  controllers: [WellKnownHttpController],
  providers: [
    SigningKeyRing,
    TokenIssuer,
    AccessTokenGuard,
    {
      // auth validates its own tokens from its key ring, not over HTTP.
      provide: AccessTokenVerifier,
      useFactory: (ring: SigningKeyRing, config: AuthConfig) =>
        new AccessTokenVerifier(
          {
            issuer: config.AUTH_ISSUER,
            audience: config.AUTH_AUDIENCE,
            jwksUrl: `${config.AUTH_ISSUER}/.well-known/jwks.json`,
          },
          (header, token) => createLocalJWKSet(ring.jwks())(header, token),
        ),
      inject: [SigningKeyRing, AUTH_CONFIG],
    },
  ],
  exports: [SigningKeyRing, TokenIssuer, AccessTokenVerifier, AccessTokenGuard],
})
export class SigningKeysModule {}
