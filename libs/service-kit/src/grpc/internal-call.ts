/**
 * Service-to-service calls (auth → registration GetDevice and provisioning
 * GetCredential, provisioning → registration GetDevice) carry proof that a
 * latchkey service of this deployment makes them: a short-lived JWS (HS256)
 * in the `latchkey-internal-call` metadata, MACed with a key every service of
 * the deployment shares (INTERNAL_CALL_KEYS, a Secret; the first key signs,
 * every listed key verifies, so keys rotate without downtime). Its `iss` names
 * the caller, its `aud` the callee; the callee's handler lists the callers it
 * serves. A client outside the deployment — the gRPC APIs are routed to the
 * internet for devices — gets UNAUTHENTICATED.
 *
 * What it does not give: with one shared key, a compromised service can claim
 * to be another. Per-service keys (or mTLS from a mesh) would close that.
 */
import {
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  type Provider,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Metadata } from '@grpc/grpc-js';
import { errors, jwtVerify, type JWTHeaderParameters, SignJWT } from 'jose';
import { keyEncryptionConfigShape, parseKeyEncryptionKeys } from '@latchkey/crypto';
import { SERVICE_CONFIG, SERVICE_NAME } from '../bootstrap/service-kit.module';
import { DomainError } from '../errors/domain-error';

/** The gRPC metadata key that carries the token. */
export const INTERNAL_CALL_METADATA = 'latchkey-internal-call';

/** Lifetime of a token; callers reuse one until a minute before it expires. */
const TOKEN_SECONDS = 300;
const RENEW_BEFORE_SECONDS = 60;
const CLOCK_TOLERANCE_SECONDS = 30;

/**
 * `<kid>:<base64 of 32 bytes>[,…]`, the first one signing: the format (and parser) of
 * KEY_ENCRYPTION_KEYS. Throws an Error naming the problem.
 */
export function parseInternalCallKeys(text: string): Map<string, Uint8Array> {
  return new Map([...parseKeyEncryptionKeys(text)].map(([kid, key]) => [kid, new Uint8Array(key)]));
}

export const internalCallConfigShape = {
  /** Shared by the deployment's services: `<kid>:<base64 of 32 bytes>[,…]`, the first signs. */
  INTERNAL_CALL_KEYS: keyEncryptionConfigShape.KEY_ENCRYPTION_KEYS,
} as const;

const audienceOf = (callee: string) => `latchkey:${callee}`;

/** Mints the caller's tokens, one per callee, reused until shortly before they expire. */
export class InternalCallSigner {
  private readonly kid: string;
  private readonly key: Uint8Array;
  private readonly tokens = new Map<string, { token: Promise<string>; renewAt: number }>();

  constructor(
    keys: Map<string, Uint8Array> | string,
    readonly caller: string,
    private readonly now: () => number = Date.now,
  ) {
    const parsed = typeof keys === 'string' ? parseInternalCallKeys(keys) : keys;
    [this.kid, this.key] = [...parsed][0]!;
  }

  /** A token for calls to `callee` (e.g. "registration"). */
  tokenFor(callee: string): Promise<string> {
    const nowMs = this.now();
    const cached = this.tokens.get(callee);
    if (cached && nowMs < cached.renewAt) return cached.token;
    const iat = Math.floor(nowMs / 1000);
    const token = new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: this.kid, typ: 'latchkey-internal-call+jwt' })
      .setIssuer(this.caller)
      .setSubject(this.caller)
      .setAudience(audienceOf(callee))
      .setIssuedAt(iat)
      .setExpirationTime(iat + TOKEN_SECONDS)
      .sign(this.key);
    this.tokens.set(callee, {
      token,
      renewAt: (iat + TOKEN_SECONDS - RENEW_BEFORE_SECONDS) * 1000,
    });
    token.catch(() => this.tokens.delete(callee));
    return token;
  }
}

/** Checks tokens addressed to this service; answers with the caller's name. */
export class InternalCallVerifier {
  private readonly keys: Map<string, Uint8Array>;
  /** Tokens already checked (callers reuse theirs for minutes): token → caller and expiry. */
  private readonly checked = new Map<string, { caller: string; expMs: number }>();

  constructor(
    keys: Map<string, Uint8Array> | string,
    readonly callee: string,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = typeof keys === 'string' ? parseInternalCallKeys(keys) : keys;
  }

  async verify(token: string, allowedCallers: readonly string[]): Promise<string> {
    const caller = await this.authenticate(token);
    if (!allowedCallers.includes(caller)) {
      throw new DomainError(
        'PERMISSION_DENIED',
        'INTERNAL_CALLER_NOT_ALLOWED',
        `this call is not for ${caller}`,
      );
    }
    return caller;
  }

  private async authenticate(token: string): Promise<string> {
    const hit = this.checked.get(token);
    if (hit && this.now() < hit.expMs + CLOCK_TOLERANCE_SECONDS * 1000) return hit.caller;
    if (hit) this.checked.delete(token);
    let payload: { iss?: string; exp?: number };
    try {
      ({ payload } = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          const key = header.kid ? this.keys.get(header.kid) : undefined;
          if (!key) throw new errors.JWKSNoMatchingKey();
          return key;
        },
        {
          algorithms: ['HS256'],
          audience: audienceOf(this.callee),
          typ: 'latchkey-internal-call+jwt',
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          maxTokenAge: TOKEN_SECONDS + CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['iss', 'iat', 'exp'],
          currentDate: new Date(this.now()),
        },
      ));
    } catch {
      throw new DomainError(
        'UNAUTHENTICATED',
        'INTERNAL_CALL_INVALID',
        'the internal-call token is not valid',
      );
    }
    const caller = payload.iss!;
    if (this.checked.size >= 1024) this.checked.clear();
    this.checked.set(token, { caller, expMs: payload.exp! * 1000 });
    return caller;
  }
}

const CALLERS_KEY = 'latchkey:internal-callers';

/** The handler serves only these latchkey services (with InternalCallGuard). */
export const InternalCallers = (...services: string[]) => SetMetadata(CALLERS_KEY, services);

/** Requires a valid internal-call token from one of the @InternalCallers (gRPC handlers). */
@Injectable()
export class InternalCallGuard implements CanActivate {
  constructor(
    @Inject(InternalCallVerifier) private readonly verifier: InternalCallVerifier,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const allowed =
      this.reflector.getAllAndOverride<string[] | undefined>(CALLERS_KEY, [
        ctx.getHandler(),
        ctx.getClass(),
      ]) ?? [];
    const value =
      ctx.getType() === 'rpc'
        ? ctx.switchToRpc().getContext<Metadata>().get(INTERNAL_CALL_METADATA)[0]
        : undefined;
    if (typeof value !== 'string' || !value) {
      throw new DomainError(
        'UNAUTHENTICATED',
        'INTERNAL_CALL_REQUIRED',
        'this call is only for latchkey services',
      );
    }
    await this.verifier.verify(value, allowed);
    return true;
  }
}

/** InternalCallVerifier for this service (its SERVICE_NAME is the audience). */
export const internalCallVerifierProvider: Provider = {
  provide: InternalCallVerifier,
  useFactory: (config: { INTERNAL_CALL_KEYS: string }, service: string) =>
    new InternalCallVerifier(config.INTERNAL_CALL_KEYS, service),
  inject: [SERVICE_CONFIG, SERVICE_NAME],
};

/** InternalCallSigner for this service's calls to others. */
export const internalCallSignerProvider: Provider = {
  provide: InternalCallSigner,
  useFactory: (config: { INTERNAL_CALL_KEYS: string }, service: string) =>
    new InternalCallSigner(config.INTERNAL_CALL_KEYS, service),
  inject: [SERVICE_CONFIG, SERVICE_NAME],
};
