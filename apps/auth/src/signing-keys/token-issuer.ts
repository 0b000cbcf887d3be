/** Issues access tokens (RFC 9068 JWTs, ES256) signed with the current key of the ring. */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { SignJWT } from 'jose';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { SigningKeyRing } from './signing-key-ring';

export interface AccessTokenSubject {
  tenantId: string;
  userId: string;
  roles: readonly string[];
  amr: readonly string[];
  /** Time of the primary authentication. */
  authTime: Date;
  scope?: string;
  deviceId?: string;
  /** The user key of a key sign-in. */
  credentialId?: string;
  /** The key session (PRT) the token was issued from. */
  sessionId?: string;
  /**
   * The token's `jti`, when the caller chose it before signing (to record the
   * sign-in with it before the token exists); a new UUID otherwise.
   */
  tokenId?: string;
}

export interface IdTokenSubject {
  tenantId: string;
  userId: string;
  amr: readonly string[];
  authTime: Date;
  /** The client the ID token is for (its `aud`). */
  audience: string;
  deviceId?: string;
  sessionId?: string;
  username: string;
  displayName: string;
  email?: string | null;
}

export interface IssuedToken {
  token: string;
  tokenId: string;
  expiresAt: Date;
}

@Injectable()
export class TokenIssuer {
  constructor(
    @Inject(SigningKeyRing) private readonly keys: SigningKeyRing,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  /** Signs `claims` with the current key for `audience`, `ttl` from now. */
  private async sign(
    claims: Record<string, unknown>,
    c: { typ: string; subject: string; audience: string; now: Date; tokenId?: string },
  ): Promise<IssuedToken> {
    const key = this.keys.signingKey();
    const iat = Math.floor(c.now.getTime() / 1000);
    const exp = iat + this.config.ACCESS_TOKEN_TTL_SECONDS;
    const tokenId = c.tokenId ?? randomUUID();
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: c.typ })
      .setIssuer(this.config.AUTH_ISSUER)
      .setSubject(c.subject)
      .setAudience(c.audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(tokenId)
      .sign(key.privateKey);
    return { token, tokenId, expiresAt: new Date(exp * 1000) };
  }

  issueAccessToken(s: AccessTokenSubject, now = new Date()): Promise<IssuedToken> {
    return this.sign(
      {
        tid: s.tenantId,
        roles: [...s.roles],
        amr: [...s.amr],
        auth_time: Math.floor(s.authTime.getTime() / 1000),
        scope: s.scope ?? 'openid profile',
        ...(s.deviceId ? { did: s.deviceId } : {}),
        ...(s.credentialId ? { cid: s.credentialId } : {}),
        ...(s.sessionId ? { sid: s.sessionId } : {}),
      },
      {
        typ: 'at+jwt',
        subject: s.userId,
        audience: this.config.AUTH_AUDIENCE,
        now,
        tokenId: s.tokenId,
      },
    );
  }

  /** An OpenID Connect ID token for `s.audience` (the device client). */
  issueIdToken(s: IdTokenSubject, now = new Date()): Promise<IssuedToken> {
    return this.sign(
      {
        tid: s.tenantId,
        amr: [...s.amr],
        auth_time: Math.floor(s.authTime.getTime() / 1000),
        preferred_username: s.username,
        name: s.displayName,
        ...(s.email ? { email: s.email } : {}),
        ...(s.deviceId ? { did: s.deviceId } : {}),
        ...(s.sessionId ? { sid: s.sessionId } : {}),
      },
      { typ: 'JWT', subject: s.userId, audience: s.audience, now },
    );
  }
}
