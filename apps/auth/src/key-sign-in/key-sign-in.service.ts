/**
 * Key-based sign-in, the refresh of its device-bound refresh token (PRT), and
 * session revocation. A sign-in request is a JWS signed by the device key that
 * carries a user assertion signed by the user key; the nonce from GetNonce is
 * in both and is consumed only after every signature and status has been
 * checked, so a request works once. Every refusal is the same error to the
 * caller; the precise reason goes to the `auth.sign_in.failed` event.
 */
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  DeviceAssertionError,
  type DeviceAssertionErrorCode,
  DeviceAssertionVerifier,
} from '@latchkey/crypto';
import {
  createEvent,
  type EventDefinition,
  type OutboxRecord,
  OutboxRelay,
  outboxRecord,
  SessionRevoked,
  SignInFailed,
  SignInSucceeded,
  type SIGN_IN_FAILURE_REASONS,
  TokenRefreshed,
} from '@latchkey/events';
import {
  assertTenantAccess,
  Coalescer,
  DomainError,
  NonceStore,
  parseRequest,
  PG_POOL,
  type Principal,
} from '@latchkey/service-kit';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import type { Pool } from 'pg';
import { z } from 'zod';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { emitEvent } from '../outbox';
import { SignInMetrics } from '../sign-in/sign-in-metrics';
import { type KeySession, type Prisma, PrismaClient } from '../generated/prisma/client';
import { TokenIssuer } from '../signing-keys/token-issuer';
import { type CredentialView, DeviceLookups, type DeviceView } from './device-lookups';
import {
  encryptToTransportKey,
  hashRefreshToken,
  looksLikeRefreshToken,
  newRefreshToken,
  newSessionKey,
  proofKey,
  unwrapSessionKey,
  wrapSessionKey,
} from './session-crypto';

type Reason = (typeof SIGN_IN_FAILURE_REASONS)[number];
type Tx = Prisma.TransactionClient;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * A credential id as provisioning makes them (base64url SHA-256 of the key's
 * SPKI). A user assertion's `kid` of any other form names no credential: it is
 * refused here, not sent to provisioning's GetCredential, which would refuse it
 * as INVALID_ARGUMENT — and the sign-in would fail as UNAVAILABLE, unrecorded.
 */
const CREDENTIAL_ID = /^[A-Za-z0-9_-]{43}$/;
/** Longest allowed distance between a user assertion's iat and exp. */
const MAX_ASSERTION_LIFETIME_S = 300;
const MAX_SKEW_S = 300;

const signInRequest = z.object({
  request: z
    .string()
    .min(1, 'is required')
    .max(32 * 1024),
});
const refreshRequest = z.object({
  refreshToken: z.string().min(1, 'is required').max(256),
  proof: z
    .string()
    .min(1, 'is required')
    .max(8 * 1024),
});
const revokeRequest = z
  .object({
    tenantId: z.string().uuid('must be a UUID'),
    userId: z.string().uuid('must be a UUID').optional().or(z.literal('')),
    deviceId: z.string().uuid('must be a UUID').optional().or(z.literal('')),
    reason: z.string().min(1, 'is required').max(256),
  })
  .refine((r) => Boolean(r.userId) !== Boolean(r.deviceId), {
    message: 'exactly one of userId and deviceId is required',
    path: ['userId'],
  });

const signInFailed = () =>
  new DomainError(
    'UNAUTHENTICATED',
    'SIGN_IN_FAILED',
    'key sign-in failed; get a new nonce and sign in again',
  );
const refreshFailed = () =>
  new DomainError(
    'UNAUTHENTICATED',
    'REFRESH_FAILED',
    'the refresh token cannot be used; sign in again',
  );
const malformed = (what: string) =>
  DomainError.invalidArgument('MALFORMED_SIGN_IN_REQUEST', `the request is not ${what}`);

const DEVICE_REASONS: Record<DeviceAssertionErrorCode, Reason> = {
  MALFORMED_ASSERTION: 'malformed_request',
  UNKNOWN_DEVICE: 'device_not_active',
  DEVICE_NOT_ACTIVE: 'device_not_active',
  UNTRUSTED_CERTIFICATE: 'bad_device_signature',
  BAD_SIGNATURE: 'bad_device_signature',
  WRONG_AUDIENCE: 'audience_mismatch',
  STALE_ASSERTION: 'assertion_expired',
  NONCE_MISMATCH: 'nonce_unknown_or_used',
  REPLAYED_ASSERTION: 'nonce_unknown_or_used',
};

/** A refusal whose reason is recorded; the caller sees only `error`. */
class Refusal extends Error {
  constructor(
    readonly reason: Reason,
    readonly facts: { userId?: string; credentialId?: string } = {},
  ) {
    super(reason);
  }
}

export interface KeySessionTokens {
  idToken: string;
  accessToken: string;
  tokenType: 'Bearer';
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
  sessionId: string;
}

interface SignInUser {
  id: string;
  tenantId: string;
  status: string;
  roles: string[];
  username: string;
  displayName: string;
  email: string | null;
}

/** A key session to store with its sign-in event. */
interface NewSession {
  sessionId: string;
  tenantId: string;
  userId: string;
  deviceId: string;
  credentialId: string;
  attestationLevel: string;
  tokenHash: string;
  wrappedSessionKey: string;
  authTime: Date;
  expiresAt: Date;
  event: OutboxRecord;
}

const audienceOf = (p: JWTPayload) => (Array.isArray(p.aud) ? p.aud : p.aud ? [p.aud] : []);

@Injectable()
export class KeySignInService {
  private readonly devices: DeviceAssertionVerifier<DeviceView>;
  private readonly userKeys = new WeakMap<CredentialView, Promise<KeyObject | Uint8Array>>();
  private readonly transportKeys = new WeakMap<DeviceView, KeyObject>();
  private readonly knownTenants = new Map<string, number>();
  /** Sign-ins' user reads and session writes, one statement for those that arrive together. */
  private readonly users: Coalescer<string, SignInUser | undefined>;
  private readonly sessions: Coalescer<NewSession, void>;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(PG_POOL) private readonly pg: Pool,
    @Inject(NonceStore) private readonly nonces: NonceStore,
    @Inject(DeviceLookups) private readonly lookups: DeviceLookups,
    @Inject(TokenIssuer) private readonly tokens: TokenIssuer,
    @Inject(OutboxRelay) private readonly relay: Pick<OutboxRelay, 'notify'>,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    @Inject(SignInMetrics) private readonly metrics: SignInMetrics,
  ) {
    this.devices = new DeviceAssertionVerifier(
      {
        tenantCaCertificate: (tenantId) => this.lookups.tenantCaCertificate(tenantId),
        device: async (tenantId, deviceId) => {
          const d = await this.lookups.device(tenantId, deviceId);
          return d?.certificatePem ? d : null;
        },
      },
      { audience: config.AUTH_ISSUER, maxSkewSeconds: MAX_SKEW_S },
    );
    this.users = new Coalescer((ids) => this.readUsers(ids));
    this.sessions = new Coalescer((rows) => this.insertSessions(rows));
  }

  private emit<S extends z.ZodTypeAny>(
    def: EventDefinition<S>,
    tenantId: string,
    data: z.infer<S>,
    tx: Tx = this.db,
  ): Promise<void> {
    return emitEvent(tx, this.relay, def, tenantId, data);
  }

  /** True for a tenant auth knows (remembered a minute, so floods cost no queries). */
  private async tenantExists(tenantId: string): Promise<boolean> {
    const until = this.knownTenants.get(tenantId);
    if (until && until > Date.now()) return true;
    const found = await this.db.tenant.findUnique({
      where: { id: tenantId },
      select: { id: true },
    });
    if (!found) return false;
    if (this.knownTenants.size > 10_000) this.knownTenants.clear();
    this.knownTenants.set(tenantId, Date.now() + 60_000);
    return true;
  }

  private userKey(cred: CredentialView): Promise<KeyObject | Uint8Array> {
    let key = this.userKeys.get(cred);
    if (!key) {
      key = importJWK(cred.publicKeyJwk, cred.algorithm);
      this.userKeys.set(cred, key);
    }
    return key;
  }

  /** The user a credential belongs to, whatever its status (the hot path's one read of auth's own tables). */
  private signInUser(userId: string): Promise<SignInUser | undefined> {
    return this.users.submit(userId);
  }

  private async readUsers(ids: string[]): Promise<(SignInUser | undefined)[]> {
    const { rows } = await this.pg.query<SignInUser>(
      `SELECT id, tenant_id AS "tenantId", status::text AS status, roles, username,
              display_name AS "displayName", email
         FROM users WHERE id = ANY($1::uuid[])`,
      [[...new Set(ids)]],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(id));
  }

  /**
   * Sessions with their sign-in events, many in one statement (one round trip, atomic: all
   * of them or none, each caller told).
   */
  private async insertSessions(rows: NewSession[]): Promise<void[]> {
    const col = <T>(f: (r: NewSession) => T) => rows.map(f);
    await this.pg.query(
      `WITH session AS (
         INSERT INTO key_sessions (id, tenant_id, user_id, device_id, credential_id,
           attestation_level, token_hash, wrapped_session_key, auth_time, last_used_at, expires_at)
         SELECT id, tenant_id, user_id, device_id, credential_id, attestation_level, token_hash,
                wrapped_session_key, auth_time, auth_time, expires_at
           FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])
             AS s(id, tenant_id, user_id, device_id, credential_id, attestation_level,
                  token_hash, wrapped_session_key, auth_time, expires_at)
       )
       INSERT INTO outbox_events (event_id, type, source, subject, tenant_id, time, data,
         traceparent, tracestate)
       SELECT * FROM unnest($11::uuid[], $12::text[], $13::text[], $14::text[], $15::text[],
                            $16::timestamptz[], $17::jsonb[], $18::text[], $19::text[])`,
      [
        col((r) => r.sessionId),
        col((r) => r.tenantId),
        col((r) => r.userId),
        col((r) => r.deviceId),
        col((r) => r.credentialId),
        col((r) => r.attestationLevel),
        col((r) => r.tokenHash),
        col((r) => r.wrappedSessionKey),
        col((r) => r.authTime),
        col((r) => r.expiresAt),
        col((r) => r.event.eventId),
        col((r) => r.event.type),
        col((r) => r.event.source),
        col((r) => r.event.subject),
        col((r) => r.event.tenantId),
        col((r) => r.event.time),
        col((r) => JSON.stringify(r.event.data)),
        col((r) => r.event.traceparent ?? null),
        col((r) => r.event.tracestate ?? null),
      ],
    );
    this.relay.notify();
    return rows.map(() => undefined);
  }

  /** The device's transport key, imported once per cached device record. */
  private transportKey(device: DeviceView): KeyObject {
    let key = this.transportKeys.get(device);
    if (!key) {
      key = createPublicKey(device.transportPublicKeyPem);
      this.transportKeys.set(device, key);
    }
    return key;
  }

  // ---------------------------------------------------------------- sign-in

  async signInWithKey(input: unknown, sourceIp?: string) {
    const { request } = parseRequest(signInRequest, input, 'INVALID_SIGN_IN_REQUEST');
    let peek: JWTPayload;
    try {
      peek = decodeJwt(request);
    } catch {
      throw malformed('a compact JWS');
    }
    const tenantId = typeof peek.tid === 'string' ? peek.tid.toLowerCase() : '';
    const deviceId = typeof peek.sub === 'string' ? peek.sub.toLowerCase() : '';
    if (!UUID.test(tenantId) || !UUID.test(deviceId))
      throw malformed('a JWS with tid (tenant id) and sub (device id)');
    if (!(await this.tenantExists(tenantId))) {
      this.metrics.attempt('key', 'unknown_tenant');
      throw signInFailed();
    }

    const now = new Date();
    try {
      const issued = await this.verifyAndIssue(request, tenantId, deviceId, now, sourceIp);
      this.metrics.attempt('key', 'success');
      return issued;
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.metrics.attempt('key', err.reason);
      await this.emit(SignInFailed, tenantId, {
        tenantId,
        stage: 'key',
        reason: err.reason,
        deviceId,
        ...(err.facts.userId ? { userId: err.facts.userId } : {}),
        ...(err.facts.credentialId ? { credentialId: err.facts.credentialId } : {}),
        ...(sourceIp ? { sourceIp } : {}),
      });
      throw signInFailed();
    }
  }

  private async verifyAndIssue(
    request: string,
    tenantId: string,
    deviceId: string,
    now: Date,
    sourceIp?: string,
  ) {
    // 1. The outer request: the device key, its certificate, the device's status.
    let claims: Record<string, unknown>;
    let device: DeviceView;
    try {
      ({ claims, device } = await this.devices.verify(request, { tenantId, deviceId }, now));
    } catch (err) {
      if (err instanceof DeviceAssertionError) throw new Refusal(DEVICE_REASONS[err.code]);
      throw err;
    }
    const nonce = typeof claims.nonce === 'string' ? claims.nonce : '';
    if (!nonce) throw new Refusal('nonce_unknown_or_used');
    const assertion = claims.user_assertion;
    if (typeof assertion !== 'string' || assertion.length > 16 * 1024)
      throw new Refusal('malformed_request');

    // 2. The inner user assertion: the user key, bound to this device and user.
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(assertion);
    } catch {
      throw new Refusal('bad_user_signature');
    }
    const credentialId =
      typeof header.kid === 'string' && CREDENTIAL_ID.test(header.kid) ? header.kid : '';
    if (!credentialId) throw new Refusal('bad_user_signature');
    const cred = await this.lookups.credential(tenantId, credentialId);
    const facts = { credentialId, ...(cred ? { userId: cred.userId } : {}) };
    if (!cred || cred.status !== 'active' || (cred.expiresAt && cred.expiresAt <= now))
      throw new Refusal('credential_not_active', facts);
    if (cred.deviceId !== deviceId) throw new Refusal('credential_device_mismatch', facts);
    if (header.alg !== cred.algorithm) throw new Refusal('bad_user_signature', facts);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, await this.userKey(cred), {
        algorithms: [cred.algorithm],
        currentDate: now,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new Refusal('assertion_expired', facts);
      throw new Refusal('bad_user_signature', facts);
    }
    if (payload.iss !== cred.userId) throw new Refusal('bad_user_signature', facts);
    if (!audienceOf(payload).includes(this.config.AUTH_ISSUER))
      throw new Refusal('audience_mismatch', facts);
    const { iat, exp } = payload;
    const nowS = now.getTime() / 1000;
    if (
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      exp < iat ||
      exp - iat > MAX_ASSERTION_LIFETIME_S ||
      iat > nowS + MAX_SKEW_S
    )
      throw new Refusal('assertion_expired', facts);
    if (payload.request_nonce !== nonce) throw new Refusal('nonce_unknown_or_used', facts);

    // 3. The user, then the nonce: the last gate, consumed once.
    const user = await this.signInUser(cred.userId);
    if (!user || user.tenantId !== tenantId || user.status !== 'active')
      throw new Refusal('user_disabled', facts);
    if (!(await this.nonces.consume(nonce, { tenantId, deviceId, purpose: 'sign_in' })))
      throw new Refusal('nonce_unknown_or_used', facts);

    // 4. Tokens, the PRT and the session key.
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    const sessionKey = newSessionKey();
    const amr = this.amr(cred);
    const expiresAt = new Date(
      now.getTime() + Math.min(this.config.PRT_TTL_SECONDS, this.config.PRT_MAX_AGE_SECONDS) * 1000,
    );
    const [tokens, sessionKeyJwe] = await Promise.all([
      this.issue(user, device, cred, sessionId, now, amr),
      encryptToTransportKey(sessionKey, this.transportKey(device), {
        kid: device.transportKeyThumbprint || undefined,
      }),
    ]);
    // The session and its event in one statement (with those of concurrent sign-ins).
    const event = outboxRecord(
      createEvent(SignInSucceeded, tenantId, {
        tenantId,
        userId: user.id,
        method: 'key',
        amr,
        tokenId: tokens.accessTokenId,
        deviceId,
        credentialId,
        attestationLevel: cred.attestationLevel,
        sessionId,
        ...(sourceIp ? { sourceIp } : {}),
      }),
    );
    await this.sessions.submit({
      sessionId,
      tenantId,
      userId: user.id,
      deviceId,
      credentialId,
      attestationLevel: cred.attestationLevel,
      tokenHash: hashRefreshToken(refreshToken),
      wrappedSessionKey: wrapSessionKey(sessionKey, refreshToken, sessionId),
      authTime: now,
      expiresAt,
      event,
    });
    sessionKey.fill(0);
    return {
      tokens: {
        ...tokens.tokens,
        refreshToken,
        refreshTokenExpiresAt: expiresAt,
      } satisfies KeySessionTokens,
      sessionKeyJwe,
    };
  }

  /** RFC 8176: proof of possession of a hardware- or software-held key, unlocked by a PIN. */
  private amr(cred: CredentialView): string[] {
    return ['pop', cred.attestationLevel === 'tpm' ? 'hwk' : 'swk', 'pin', 'mfa'];
  }

  private async issue(
    user: {
      id: string;
      roles: string[];
      username: string;
      displayName: string;
      email: string | null;
    },
    device: DeviceView,
    cred: CredentialView,
    sessionId: string,
    authTime: Date,
    amr: string[],
    accessTokenId?: string,
  ) {
    const [access, id] = await Promise.all([
      this.tokens.issueAccessToken({
        ...(accessTokenId ? { tokenId: accessTokenId } : {}),
        tenantId: device.tenantId,
        userId: user.id,
        roles: user.roles,
        amr,
        authTime,
        deviceId: device.deviceId,
        credentialId: cred.credentialId,
        sessionId,
      }),
      this.tokens.issueIdToken({
        tenantId: device.tenantId,
        userId: user.id,
        amr,
        authTime,
        audience: this.config.DEVICE_CLIENT_ID,
        deviceId: device.deviceId,
        sessionId,
        username: user.username,
        displayName: user.displayName,
        email: user.email,
      }),
    ]);
    return {
      accessTokenId: access.tokenId,
      tokens: {
        idToken: id.token,
        accessToken: access.token,
        tokenType: 'Bearer' as const,
        accessTokenExpiresAt: access.expiresAt,
        sessionId,
      },
    };
  }

  // ---------------------------------------------------------------- refresh

  async refresh(input: unknown, sourceIp?: string) {
    const req = parseRequest(refreshRequest, input, 'INVALID_REFRESH_REQUEST');
    if (!looksLikeRefreshToken(req.refreshToken)) {
      this.metrics.attempt('refresh', 'refresh_token_invalid');
      throw refreshFailed();
    }
    const hash = hashRefreshToken(req.refreshToken);
    const session = await this.db.keySession.findUnique({ where: { tokenHash: hash } });
    if (!session) {
      const reused = await this.detectReuse(hash, sourceIp);
      this.metrics.attempt('refresh', reused ? 'refresh_token_reused' : 'refresh_token_invalid');
      throw refreshFailed();
    }
    const now = new Date();
    try {
      const rotated = await this.verifyAndRotate(
        session,
        req.refreshToken,
        req.proof,
        now,
        sourceIp,
      );
      this.metrics.attempt('refresh', 'success');
      return rotated;
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.metrics.attempt('refresh', err.reason);
      await this.emit(SignInFailed, session.tenantId, {
        tenantId: session.tenantId,
        userId: session.userId,
        stage: 'refresh',
        reason: err.reason,
        deviceId: session.deviceId,
        credentialId: session.credentialId,
        sessionId: session.id,
        ...(sourceIp ? { sourceIp } : {}),
      });
      throw refreshFailed();
    }
  }

  /** A rotated-out PRT presented again: someone else holds a copy. The session ends. */
  private async detectReuse(hash: string, sourceIp?: string): Promise<boolean> {
    const reused = await this.db.keySession.findUnique({ where: { previousTokenHash: hash } });
    if (!reused) return false;
    await this.db.$transaction(async (tx) => {
      const { count } = await tx.keySession.updateMany({
        where: { id: reused.id, status: 'active' },
        data: { status: 'revoked', revokedAt: new Date(), revokeReason: 'refresh token reused' },
      });
      const base = { tenantId: reused.tenantId, sessionId: reused.id };
      await this.emit(
        SignInFailed,
        reused.tenantId,
        {
          ...base,
          userId: reused.userId,
          stage: 'refresh',
          reason: 'refresh_token_reused',
          deviceId: reused.deviceId,
          credentialId: reused.credentialId,
          ...(sourceIp ? { sourceIp } : {}),
        },
        tx,
      );
      if (count)
        await this.emit(
          SessionRevoked,
          reused.tenantId,
          {
            ...base,
            scope: 'session',
            userId: reused.userId,
            deviceId: reused.deviceId,
            revokedCount: count,
            trigger: 'refresh_token_reuse',
            reason: 'a rotated-out refresh token was presented again',
          },
          tx,
        );
    });
    return true;
  }

  private async verifyAndRotate(
    session: KeySession,
    refreshToken: string,
    proof: string,
    now: Date,
    sourceIp?: string,
  ) {
    if (session.status !== 'active') throw new Refusal('session_revoked');
    if (session.expiresAt <= now) throw new Refusal('refresh_token_invalid');
    const sessionKey = unwrapSessionKey(session.wrappedSessionKey, refreshToken, session.id);
    if (!sessionKey) throw new Refusal('refresh_token_invalid');

    // The proof: HS256 with HKDF(session key, ctx), over a fresh refresh nonce.
    let ctx: Buffer;
    try {
      const header = decodeProtectedHeader(proof);
      if (header.alg !== 'HS256' || typeof header.ctx !== 'string') throw new Error('header');
      ctx = Buffer.from(header.ctx, 'base64url');
      if (ctx.length !== 32) throw new Error('ctx');
    } catch {
      throw new Refusal('bad_session_proof');
    }
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(proof, proofKey(sessionKey, ctx), {
        algorithms: ['HS256'],
        currentDate: now,
        clockTolerance: MAX_SKEW_S,
      }));
    } catch {
      throw new Refusal('bad_session_proof');
    }
    if (!audienceOf(claims).includes(this.config.AUTH_ISSUER))
      throw new Refusal('audience_mismatch');
    if (
      claims.tid !== session.tenantId ||
      claims.sub !== session.deviceId ||
      typeof claims.iat !== 'number' ||
      Math.abs(now.getTime() / 1000 - claims.iat) > MAX_SKEW_S
    )
      throw new Refusal('bad_session_proof');
    const nonce = typeof claims.nonce === 'string' ? claims.nonce : '';

    // The device, the key and the user must all still be allowed.
    const [device, cred, user] = await Promise.all([
      this.lookups.device(session.tenantId, session.deviceId),
      this.lookups.credential(session.tenantId, session.credentialId),
      this.db.user.findUnique({ where: { id: session.userId } }),
    ]);
    if (!device || device.status !== 'active') throw new Refusal('device_not_active');
    if (
      !cred ||
      cred.status !== 'active' ||
      cred.deviceId !== session.deviceId ||
      (cred.expiresAt && cred.expiresAt <= now)
    )
      throw new Refusal('credential_not_active');
    if (!user || user.status !== 'active') throw new Refusal('user_disabled');
    if (
      !nonce ||
      !(await this.nonces.consume(nonce, {
        tenantId: session.tenantId,
        deviceId: session.deviceId,
        purpose: 'refresh',
      }))
    )
      throw new Refusal('nonce_unknown_or_used');

    // Rotate the PRT (the session key stays; it is re-wrapped under the new PRT).
    const nextToken = newRefreshToken();
    const expiresAt = new Date(
      Math.min(
        now.getTime() + this.config.PRT_TTL_SECONDS * 1000,
        session.createdAt.getTime() + this.config.PRT_MAX_AGE_SECONDS * 1000,
      ),
    );
    const wrapped = wrapSessionKey(sessionKey, nextToken, session.id);
    sessionKey.fill(0);
    // The rotation decides first, the signatures come last: a refresh that loses a race for
    // this PRT (or finds the session revoked meanwhile) costs no ES256 signature, and the event
    // names the access token that is then returned (its id is chosen here).
    const accessTokenId = randomUUID();
    const issued = await this.db.$transaction(async (tx) => {
      const { count } = await tx.keySession.updateMany({
        where: { id: session.id, tokenHash: session.tokenHash, status: 'active' },
        data: {
          tokenHash: hashRefreshToken(nextToken),
          previousTokenHash: session.tokenHash,
          wrappedSessionKey: wrapped,
          lastUsedAt: now,
          expiresAt,
        },
      });
      if (count !== 1) return null;
      await this.emit(
        TokenRefreshed,
        session.tenantId,
        {
          tenantId: session.tenantId,
          userId: session.userId,
          deviceId: session.deviceId,
          credentialId: session.credentialId,
          sessionId: session.id,
          tokenId: accessTokenId,
          ...(sourceIp ? { sourceIp } : {}),
        },
        tx,
      );
      // Last, still in the transaction: if signing fails (no key loaded), the rotation rolls
      // back and the device's current PRT stays the valid one.
      return this.issue(
        user,
        device,
        cred,
        session.id,
        session.authTime,
        this.amr(cred),
        accessTokenId,
      );
    });
    if (!issued) throw new Refusal('refresh_token_invalid');
    return {
      tokens: {
        ...issued.tokens,
        refreshToken: nextToken,
        refreshTokenExpiresAt: expiresAt,
      } satisfies KeySessionTokens,
    };
  }

  // ---------------------------------------------------------------- revocation

  async revokeSessions(input: unknown, actor: Principal): Promise<{ revokedCount: number }> {
    const req = parseRequest(revokeRequest, input, 'INVALID_REVOKE_REQUEST');
    assertTenantAccess(actor, req.tenantId);
    const scope = req.userId ? 'user' : 'device';
    return this.db.$transaction(async (tx) => {
      const { count } = await tx.keySession.updateMany({
        where: {
          tenantId: req.tenantId,
          status: 'active',
          ...(req.userId ? { userId: req.userId } : { deviceId: req.deviceId! }),
        },
        data: { status: 'revoked', revokedAt: new Date(), revokeReason: req.reason },
      });
      await this.emit(
        SessionRevoked,
        req.tenantId,
        {
          tenantId: req.tenantId,
          scope,
          ...(req.userId ? { userId: req.userId } : { deviceId: req.deviceId! }),
          revokedCount: count,
          trigger: 'admin',
          reason: req.reason,
          actorId: actor.subject,
        },
        tx,
      );
      return { revokedCount: count };
    });
  }
}
