/**
 * Validates access tokens issued by auth, locally, from auth's JWKS (cached,
 * refetched when a token carries an unknown `kid`). Never calls auth per request.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import { DomainError } from '../errors/domain-error';

/** Roles carried in the `roles` claim. `operator` is the platform role (cross-tenant). */
export type Role = 'user' | 'admin' | 'operator' | 'soc';

/** Who is calling, as proven by a verified access token. */
export interface Principal {
  subject: string;
  tenantId: string;
  roles: readonly Role[];
  scopes: readonly string[];
  amr: readonly string[];
  /** Seconds since the epoch of the primary authentication. */
  authTime: number;
  tokenId?: string;
  deviceId?: string;
}

export interface AccessTokenVerifierOptions {
  issuer: string;
  audience: string;
  /** Usually `${issuer}/.well-known/jwks.json`. */
  jwksUrl: string;
  /** Allowed clock skew in seconds. */
  clockToleranceSeconds?: number;
}

export const accessTokenClaims = z.object({
  sub: z.string().min(1),
  tid: z.string().min(1),
  roles: z.array(z.enum(['user', 'admin', 'operator', 'soc'])).default([]),
  scope: z.string().default(''),
  amr: z.array(z.string()).default([]),
  auth_time: z.number().int(),
  jti: z.string().optional(),
  did: z.string().optional(),
});

export class AccessTokenVerifier {
  private readonly jwks: JWTVerifyGetKey;

  constructor(
    private readonly options: AccessTokenVerifierOptions,
    jwks?: JWTVerifyGetKey,
  ) {
    this.jwks =
      jwks ??
      createRemoteJWKSet(new URL(options.jwksUrl), {
        cacheMaxAge: 10 * 60_000,
        cooldownDuration: 5_000,
        timeoutDuration: 3_000,
      });
  }

  async verify(token: string): Promise<Principal> {
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.options.issuer,
        audience: this.options.audience,
        algorithms: ['ES256'],
        clockTolerance: this.options.clockToleranceSeconds ?? 30,
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (err) {
      if (err instanceof errors.JOSEError && !(err instanceof errors.JWKSTimeout)) {
        throw new DomainError(
          'UNAUTHENTICATED',
          'INVALID_ACCESS_TOKEN',
          'the access token is not valid',
        );
      }
      throw DomainError.unavailable(
        'JWKS_UNAVAILABLE',
        'cannot fetch the token signing keys; retry later',
      );
    }
    const claims = accessTokenClaims.safeParse(payload);
    if (!claims.success) {
      throw new DomainError(
        'UNAUTHENTICATED',
        'INVALID_ACCESS_TOKEN',
        'the access token lacks required claims',
      );
    }
    const c = claims.data;
    return {
      subject: c.sub,
      tenantId: c.tid,
      roles: c.roles,
      scopes: c.scope.split(' ').filter(Boolean),
      amr: c.amr,
      authTime: c.auth_time,
      ...(c.jti ? { tokenId: c.jti } : {}),
      ...(c.did ? { deviceId: c.did } : {}),
    };
  }
}
