/**
 * HTTPS face of key sign-in. `POST /v1/token` is an OAuth 2.0 style token
 * endpoint (form-encoded or JSON): `grant_type` =
 * `urn:ietf:params:oauth:grant-type:jwt-bearer` with `request` (the signed
 * sign-in request), or `refresh_token` with `refresh_token` and `proof`.
 * Errors are application/problem+json like every other route.
 */
import {
  Body,
  Controller,
  HttpCode,
  Inject,
  Ip,
  Param,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import { AccessTokenGuard, DomainError, principalOf, RequireRoles } from '@latchkey/service-kit';
import { type KeySessionTokens, KeySignInService } from './key-sign-in.service';

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

function toOAuth(t: KeySessionTokens, now = Date.now()) {
  return {
    token_type: t.tokenType,
    access_token: t.accessToken,
    expires_in: Math.max(0, Math.round((t.accessTokenExpiresAt.getTime() - now) / 1000)),
    id_token: t.idToken,
    refresh_token: t.refreshToken,
    refresh_token_expires_in: Math.max(
      0,
      Math.round((t.refreshTokenExpiresAt.getTime() - now) / 1000),
    ),
    session_id: t.sessionId,
  };
}

type TokenBody = Record<string, unknown> | undefined;

@Controller('v1')
export class KeySignInHttpController {
  constructor(@Inject(KeySignInService) private readonly keySignIn: KeySignInService) {}

  @Post('token')
  @HttpCode(200)
  async token(@Body() body: TokenBody, @Ip() ip: string) {
    const grant = body?.grant_type;
    if (grant === JWT_BEARER_GRANT) {
      const r = await this.keySignIn.signInWithKey(
        { request: body?.request ?? body?.assertion },
        ip,
      );
      return { ...toOAuth(r.tokens), session_key_jwe: r.sessionKeyJwe };
    }
    if (grant === 'refresh_token') {
      const r = await this.keySignIn.refresh(
        { refreshToken: body?.refresh_token, proof: body?.proof },
        ip,
      );
      return toOAuth(r.tokens);
    }
    throw DomainError.invalidArgument(
      'UNSUPPORTED_GRANT_TYPE',
      `grant_type must be ${JWT_BEARER_GRANT} or refresh_token`,
      [{ field: 'grant_type', description: 'unsupported grant type' }],
    );
  }

  @Post('tenants/:tenantId/sessions/revoke')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async revoke(@Req() req: object, @Param('tenantId') tenantId: string, @Body() body: TokenBody) {
    return this.keySignIn.revokeSessions({ ...(body ?? {}), tenantId }, principalOf(req));
  }
}
