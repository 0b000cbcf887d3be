/** OIDC discovery and the JWKS: how relying parties validate auth's tokens without calling it. */
import { Controller, Get, Header, Inject } from '@nestjs/common';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { SigningKeyRing } from './signing-key-ring';

@Controller('.well-known')
export class WellKnownHttpController {
  constructor(
    @Inject(SigningKeyRing) private readonly keys: SigningKeyRing,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  @Get('jwks.json')
  @Header('cache-control', 'public, max-age=300')
  @Header('content-type', 'application/jwk-set+json')
  jwks() {
    return this.keys.jwks();
  }

  @Get('openid-configuration')
  @Header('cache-control', 'public, max-age=3600')
  discovery() {
    const issuer = this.config.AUTH_ISSUER;
    return {
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      // Primary sign-in is latchkey's own API (password, then TOTP); see the README.
      sign_in_endpoint: `${issuer}/v1/sign-in/password`,
      response_types_supported: ['token'],
      grant_types_supported: ['password_mfa'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      token_endpoint_auth_methods_supported: ['none'],
      scopes_supported: ['openid', 'profile'],
      claims_supported: [
        'iss',
        'sub',
        'aud',
        'exp',
        'iat',
        'auth_time',
        'amr',
        'tid',
        'roles',
        'scope',
        'jti',
        'did',
      ],
      access_token_signing_alg_values_supported: ['ES256'],
    };
  }
}
