/**
 * Service-to-service calls (auth → registration GetDevice and provisioning
 * GetCredential, provisioning → registration GetDevice) carry proof of which
 * latchkey service makes them: a short-lived JWS (EdDSA, Ed25519) in the
 * `latchkey-internal-call` metadata, signed with the caller's own private key.
 * Its `iss` names the caller, its `aud` the callee; the callee's handler lists
 * the callers it serves. A client outside the deployment — the gRPC APIs are
 * routed to the internet for devices — gets UNAUTHENTICATED.
 *
 * Each caller holds only its own signing keys (INTERNAL_CALL_SIGNING_KEYS, a
 * Secret: a JWK Set of private Ed25519 keys, the first signing); each callee
 * holds only public keys, per caller (INTERNAL_CALL_TRUSTED_KEYS: caller name →
 * JWK Set). A token is checked only against the keys of the caller its `iss`
 * names, so a compromised service cannot speak as another one (as it could when
 * all services shared one MAC key). Keys rotate without downtime: publish the new
 * public key to the callees, then sign with it, then drop the old one.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
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
import { decodeJwt, errors, jwtVerify, type JWTHeaderParameters, SignJWT } from 'jose';
import { z } from 'zod';
import { SERVICE_CONFIG, SERVICE_NAME } from '../bootstrap/service-kit.module';
import { DomainError } from '../errors/domain-error';

/** The gRPC metadata key that carries the token. */
export const INTERNAL_CALL_METADATA = 'latchkey-internal-call';
/** The token's `typ` header. */
export const INTERNAL_CALL_TOKEN_TYPE = 'latchkey-internal-call+jwt';
/** The only signature algorithm (Ed25519 keys): pinned on both sides. */
export const INTERNAL_CALL_ALG = 'EdDSA';

/** Lifetime of a token; callers reuse one until a minute before it expires. */
const TOKEN_SECONDS = 300;
const RENEW_BEFORE_SECONDS = 60;
const CLOCK_TOLERANCE_SECONDS = 30;

const KID = /^[A-Za-z0-9._-]{1,64}$/;
const SERVICE = /^[a-z][a-z0-9-]{0,62}$/;

/** The keys of one JWK Set by kid, in the set's order (the first signs). */
export type InternalCallKeys = Map<string, KeyObject>;

/** Parses JSON without echoing it (it may hold private keys). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error('is not valid JSON');
  }
}

/**
 * One JWK Set of Ed25519 keys, private (`d` required) or public (`d` refused).
 * Errors name the key by position and kid, never by its material.
 */
function parseKeySet(set: unknown, kind: 'private' | 'public', where: string): InternalCallKeys {
  const keys = (set as { keys?: unknown } | null)?.keys;
  if (typeof set !== 'object' || set === null || Array.isArray(set) || !Array.isArray(keys))
    throw new Error(`${where} must be a JWK Set: {"keys":[…]}`);
  if (keys.length === 0) throw new Error(`${where} holds no key`);
  const out: InternalCallKeys = new Map();
  keys.forEach((jwk: unknown, i) => {
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk))
      throw new Error(`${where}: key ${i} is not a JWK object`);
    const k = jwk as Record<string, unknown>;
    const name = typeof k.kid === 'string' && KID.test(k.kid) ? k.kid : undefined;
    if (!name)
      throw new Error(`${where}: key ${i} needs a "kid" of 1-64 letters, digits, ".", "_" or "-"`);
    const at = `${where}: key "${name}"`;
    if (out.has(name)) throw new Error(`${at} appears twice`);
    if (k.kty !== 'OKP' || k.crv !== 'Ed25519')
      throw new Error(`${at} must be an Ed25519 key ("kty":"OKP","crv":"Ed25519")`);
    if (k.alg !== undefined && k.alg !== INTERNAL_CALL_ALG)
      throw new Error(`${at} has "alg" ${JSON.stringify(k.alg)}: only "${INTERNAL_CALL_ALG}"`);
    if (k.use !== undefined && k.use !== 'sig')
      throw new Error(`${at} has a "use" other than "sig"`);
    if (typeof k.x !== 'string') throw new Error(`${at} has no public part ("x")`);
    let key: KeyObject;
    if (kind === 'private') {
      if (typeof k.d !== 'string') throw new Error(`${at} is not a private key (no "d")`);
      try {
        key = createPrivateKey({
          key: { kty: 'OKP', crv: 'Ed25519', x: k.x, d: k.d },
          format: 'jwk',
        });
      } catch {
        throw new Error(`${at} is not a valid Ed25519 private key`);
      }
      const x = createPublicKey(key).export({ format: 'jwk' }).x;
      if (x !== k.x) throw new Error(`${at}: "x" is not the public half of "d"`);
    } else {
      if ('d' in k)
        throw new Error(`${at} holds a private key ("d"): list only the callers' public keys here`);
      try {
        key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' });
      } catch {
        throw new Error(`${at} is not a valid Ed25519 public key`);
      }
    }
    out.set(name, key);
  });
  return out;
}

/**
 * INTERNAL_CALL_SIGNING_KEYS: a JWK Set of this service's private Ed25519 keys, each with
 * a kid; the first signs, the others are kept during a rotation. Throws an Error naming the problem.
 */
export function parseInternalCallSigningKeys(text: string): InternalCallKeys {
  return parseKeySet(parseJson(text), 'private', 'the JWK Set');
}

/**
 * INTERNAL_CALL_TRUSTED_KEYS: `{"<caller>":{"keys":[<public JWK>…]},…}`, the public keys
 * of each service allowed to sign calls to this one. Throws an Error naming the problem.
 */
export function parseInternalCallTrustedKeys(text: string): Map<string, InternalCallKeys> {
  const value = parseJson(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('must be a JSON object: {"<caller service>":{"keys":[…]},…}');
  const out = new Map<string, InternalCallKeys>();
  for (const [caller, set] of Object.entries(value)) {
    if (!SERVICE.test(caller)) throw new Error(`"${caller.slice(0, 64)}" is not a service name`);
    out.set(caller, parseKeySet(set, 'public', `the keys of ${caller}`));
  }
  if (out.size === 0) throw new Error('names no caller');
  return out;
}

const validated = (parse: (text: string) => unknown) =>
  z.string().superRefine((v, ctx) => {
    try {
      parse(v);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    }
  });

/** Services that call others' internal RPCs (auth, provisioning). */
export const internalCallSignerConfigShape = {
  /** A JWK Set (JSON) of this service's private Ed25519 keys, the first signing (a Secret). */
  INTERNAL_CALL_SIGNING_KEYS: validated(parseInternalCallSigningKeys),
} as const;

/** Services that serve internal RPCs (registration, provisioning). */
export const internalCallVerifierConfigShape = {
  /** Caller name → JWK Set of its public keys (JSON; not secret). */
  INTERNAL_CALL_TRUSTED_KEYS: validated(parseInternalCallTrustedKeys),
} as const;

const audienceOf = (callee: string) => `latchkey:${callee}`;

/** Mints the caller's tokens, one per callee, reused until shortly before they expire. */
export class InternalCallSigner {
  private readonly kid: string;
  private readonly key: KeyObject;
  private readonly tokens = new Map<string, { token: Promise<string>; renewAt: number }>();

  constructor(
    keys: InternalCallKeys | string,
    readonly caller: string,
    private readonly now: () => number = Date.now,
  ) {
    const parsed = typeof keys === 'string' ? parseInternalCallSigningKeys(keys) : keys;
    const first = [...parsed][0];
    if (!first || first[1].type !== 'private')
      throw new Error('InternalCallSigner needs a private key');
    [this.kid, this.key] = first;
  }

  /** A token for calls to `callee` (e.g. "registration"). */
  tokenFor(callee: string): Promise<string> {
    const nowMs = this.now();
    const cached = this.tokens.get(callee);
    if (cached && nowMs < cached.renewAt) return cached.token;
    const iat = Math.floor(nowMs / 1000);
    const token = new SignJWT({})
      .setProtectedHeader({ alg: INTERNAL_CALL_ALG, kid: this.kid, typ: INTERNAL_CALL_TOKEN_TYPE })
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
  private readonly trusted: Map<string, InternalCallKeys>;
  /** Tokens already checked (callers reuse theirs for minutes): token → caller and expiry. */
  private readonly checked = new Map<string, { caller: string; expMs: number }>();

  constructor(
    trusted: Map<string, InternalCallKeys> | string,
    readonly callee: string,
    private readonly now: () => number = Date.now,
  ) {
    this.trusted = typeof trusted === 'string' ? parseInternalCallTrustedKeys(trusted) : trusted;
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
      // Only the keys of the service the token claims to come from may have signed it.
      const claimed = decodeJwt(token).iss;
      const keys = typeof claimed === 'string' ? this.trusted.get(claimed) : undefined;
      if (!keys) throw new errors.JWKSNoMatchingKey();
      ({ payload } = await jwtVerify(
        token,
        (header: JWTHeaderParameters) => {
          const key = header.kid ? keys.get(header.kid) : undefined;
          if (!key) throw new errors.JWKSNoMatchingKey();
          return key;
        },
        {
          algorithms: [INTERNAL_CALL_ALG],
          issuer: claimed,
          audience: audienceOf(this.callee),
          typ: INTERNAL_CALL_TOKEN_TYPE,
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
  useFactory: (config: { INTERNAL_CALL_TRUSTED_KEYS: string }, service: string) =>
    new InternalCallVerifier(config.INTERNAL_CALL_TRUSTED_KEYS, service),
  inject: [SERVICE_CONFIG, SERVICE_NAME],
};

/** InternalCallSigner for this service's calls to others. */
export const internalCallSignerProvider: Provider = {
  provide: InternalCallSigner,
  useFactory: (config: { INTERNAL_CALL_SIGNING_KEYS: string }, service: string) =>
    new InternalCallSigner(config.INTERNAL_CALL_SIGNING_KEYS, service),
  inject: [SERVICE_CONFIG, SERVICE_NAME],
};
