/**
 * Primary sign-in: password → single-use MFA ticket → TOTP code → access token
 * (amr ["pwd","otp"]). Every password failure — unknown tenant or user, wrong
 * password, disabled or locked account — gives the same error after the same
 * work (one scrypt hash), and is recorded as an event with its real reason.
 */
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  type EventDefinition,
  MfaEnrolled,
  OutboxRelay,
  SignInFailed,
  SignInSucceeded,
  SIGN_IN_FAILURE_REASONS,
  UserLocked,
} from '@latchkey/events';
import { KeyEncryption } from '@latchkey/crypto';
import { DomainError, parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { emitEvent } from '../outbox';
import { PrismaClient, type Prisma, type Tenant } from '../generated/prisma/client';
import { PasswordHasher } from '../passwords/password-hasher';
import { TokenIssuer } from '../signing-keys/token-issuer';
import {
  DEFAULT_TOTP,
  generateTotpSecret,
  type TotpAlgorithm,
  totpUri,
  verifyTotp,
} from '../totp/totp';
import { MfaTicketStore } from './mfa-ticket-store';
import { SignInMetrics } from './sign-in-metrics';
import { SignInThrottle } from './sign-in-throttle';

type Reason = (typeof SIGN_IN_FAILURE_REASONS)[number];
type Tx = Prisma.TransactionClient;

const signInRequest = z.object({
  tenant: z.string().min(1, 'is required').max(128),
  username: z.string().min(1, 'is required').max(256),
  password: z.string().min(1, 'is required').max(1024),
});

const mfaRequest = z.object({
  mfaTicket: z.string().min(1, 'is required').max(128),
  code: z.string().min(1, 'is required').max(16),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const signInFailed = () =>
  new DomainError(
    'UNAUTHENTICATED',
    'SIGN_IN_FAILED',
    'sign-in failed: wrong tenant, username or password',
  );
const mfaFailed = () =>
  new DomainError(
    'UNAUTHENTICATED',
    'MFA_FAILED',
    'the code or the ticket is not valid; sign in again',
  );

export const totpSecretContext = (userId: string) => `auth.totp-secret:${userId}`;

@Injectable()
export class SignInService {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(PasswordHasher) private readonly passwords: PasswordHasher,
    @Inject(SignInThrottle) private readonly throttle: SignInThrottle,
    @Inject(MfaTicketStore) private readonly tickets: MfaTicketStore,
    @Inject(TokenIssuer) private readonly tokens: TokenIssuer,
    @Inject(KeyEncryption) private readonly kek: KeyEncryption,
    @Inject(OutboxRelay) private readonly relay: Pick<OutboxRelay, 'notify'>,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    @Inject(SignInMetrics) private readonly metrics: SignInMetrics,
  ) {}

  private emit<S extends z.ZodTypeAny>(
    def: EventDefinition<S>,
    tenantId: string,
    data: z.infer<S>,
    tx: Tx = this.db,
  ): Promise<void> {
    return emitEvent(tx, this.relay, def, tenantId, data);
  }

  private findTenant(ref: string): Promise<Tenant | null> {
    return UUID.test(ref)
      ? this.db.tenant.findUnique({ where: { id: ref.toLowerCase() } })
      : this.db.tenant.findUnique({ where: { name: ref.toLowerCase() } });
  }

  private policy(t: Tenant) {
    return {
      threshold: t.lockoutThreshold,
      windowSeconds: t.lockoutWindowSeconds,
      durationSeconds: t.lockoutDurationSeconds,
    };
  }

  /** Counts a failure (maybe locking the account) and records it. */
  private async fail(
    tenant: Tenant,
    username: string,
    userId: string | undefined,
    stage: 'password' | 'otp',
    reason: Reason,
    sourceIp: string | undefined,
  ): Promise<void> {
    this.metrics.attempt(stage, reason);
    const counted = !['user_locked', 'user_disabled', 'rate_limited'].includes(reason);
    const { failures, lockedNow } = counted
      ? await this.throttle.recordFailure(tenant.id, username, this.policy(tenant))
      : { failures: 0, lockedNow: false };
    const ip = sourceIp ? { sourceIp } : {};
    const uid = userId ? { userId } : {};
    await this.emit(SignInFailed, tenant.id, {
      tenantId: tenant.id,
      username,
      stage,
      reason,
      ...uid,
      ...ip,
    });
    if (lockedNow) {
      await this.emit(UserLocked, tenant.id, {
        tenantId: tenant.id,
        username,
        failures,
        lockedUntil: new Date(Date.now() + tenant.lockoutDurationSeconds * 1000).toISOString(),
        ...uid,
        ...ip,
      });
    }
  }

  async signInWithPassword(input: unknown, sourceIp?: string) {
    const req = parseRequest(signInRequest, input, 'INVALID_SIGN_IN_REQUEST');
    const username = req.username.toLowerCase();
    const rate = await this.throttle.admit(sourceIp ?? 'unknown');
    if (rate.limited) {
      const tenant = rate.firstOverLimit ? await this.findTenant(req.tenant) : null;
      if (tenant)
        await this.fail(tenant, username, undefined, 'password', 'rate_limited', sourceIp);
      else this.metrics.attempt('password', 'rate_limited');
      throw new DomainError(
        'RESOURCE_EXHAUSTED',
        'SIGN_IN_RATE_LIMITED',
        'too many sign-in attempts from this source; retry later',
      );
    }
    const tenant = await this.findTenant(req.tenant);
    if (!tenant) {
      await this.passwords.verify(req.password, undefined);
      this.metrics.attempt('password', 'unknown_tenant');
      throw signInFailed();
    }
    const lockedFor = await this.throttle.lockedFor(tenant.id, username);
    const user = await this.db.user.findUnique({
      where: { tenantId_username: { tenantId: tenant.id, username } },
      include: { totp: { select: { status: true } } },
    });
    // Always one hash, whatever happens next.
    const ok = await this.passwords.verify(
      req.password,
      lockedFor ? undefined : user?.passwordHash,
    );
    if (lockedFor) {
      await this.fail(tenant, username, user?.id, 'password', 'user_locked', sourceIp);
      throw signInFailed();
    }
    if (!user || !ok) {
      await this.fail(
        tenant,
        username,
        user?.id,
        'password',
        user ? 'bad_credentials' : 'unknown_user',
        sourceIp,
      );
      throw signInFailed();
    }
    if (user.status !== 'active') {
      await this.fail(tenant, username, user.id, 'password', 'user_disabled', sourceIp);
      throw signInFailed();
    }
    if (user.passwordHash && this.passwords.needsRehash(user.passwordHash)) {
      const rehashed = await this.passwords.hash(req.password);
      await this.db.user.update({ where: { id: user.id }, data: { passwordHash: rehashed } });
    }
    const enrollmentRequired = user.totp?.status !== 'active';
    const { ticket, expiresAt } = await this.tickets.issue({
      tenantId: tenant.id,
      userId: user.id,
      username,
      passwordAt: Date.now(),
      enrollmentRequired,
    });
    this.metrics.attempt('password', 'success');
    return { mfaTicket: ticket, expiresAt, totpEnrollmentRequired: enrollmentRequired };
  }

  /** Starts (or restarts) TOTP enrolment for a user without an active factor. */
  async enrollTotp(input: unknown): Promise<{ secret: string; otpauthUri: string }> {
    const req = parseRequest(
      z.object({ mfaTicket: z.string().min(1).max(128) }),
      input,
      'INVALID_ENROLLMENT_REQUEST',
    );
    const ticket = await this.tickets.peek(req.mfaTicket);
    if (!ticket || !ticket.enrollmentRequired) throw mfaFailed();
    const user = await this.db.user.findUnique({
      where: { id: ticket.userId },
      include: { totp: true, tenant: true },
    });
    if (!user || user.status !== 'active') throw mfaFailed();
    if (user.totp?.status === 'active')
      throw new DomainError(
        'FAILED_PRECONDITION',
        'TOTP_ALREADY_ENROLLED',
        'a TOTP factor is already active',
      );
    const secret = generateTotpSecret();
    const secretEncrypted = this.kek.encrypt(secret, totpSecretContext(user.id));
    await this.db.totpFactor.upsert({
      where: { userId: user.id },
      create: { userId: user.id, secretEncrypted, status: 'pending' },
      update: { secretEncrypted, status: 'pending', lastUsedStep: null, activatedAt: null },
    });
    return { secret, otpauthUri: totpUri(secret, user.username, `latchkey ${user.tenant.name}`) };
  }

  async completeMfa(input: unknown, sourceIp?: string) {
    const req = parseRequest(mfaRequest, input, 'INVALID_MFA_REQUEST');
    const ticket = await this.tickets.consume(req.mfaTicket);
    const [tenant, user] = ticket
      ? await Promise.all([
          this.db.tenant.findUnique({ where: { id: ticket.tenantId } }),
          this.db.user.findUnique({ where: { id: ticket.userId }, include: { totp: true } }),
        ])
      : [];
    if (!ticket || !tenant || !user || !user.totp) {
      this.metrics.attempt('otp', 'mfa_ticket_invalid');
      throw mfaFailed();
    }
    const fail = async (reason: Reason) => {
      await this.fail(tenant, user.username, user.id, 'otp', reason, sourceIp);
      return mfaFailed();
    };
    if (user.status !== 'active') throw await fail('user_disabled');
    if (await this.throttle.lockedFor(tenant.id, user.username)) throw await fail('user_locked');
    const factor = user.totp;
    const secret = this.kek.decrypt(factor.secretEncrypted, totpSecretContext(user.id)).toString();
    const step = verifyTotp(req.code, secret, {
      algorithm: factor.algorithm as TotpAlgorithm,
      digits: factor.digits,
      periodSeconds: factor.periodSeconds,
    } satisfies typeof DEFAULT_TOTP);
    if (step === null) throw await fail('bad_otp');

    // The factor is accepted (the step used up, the event written) before anything is
    // signed: a refused code never costs a signature, and no token exists before the
    // factor is accepted. The token id is chosen first so the event can name it.
    const amr = ['pwd', 'otp'];
    const tokenId = randomUUID();
    const issued = await this.db.$transaction(async (tx) => {
      // A step is accepted once: the conditional update is the atomic check.
      const { count } = await tx.totpFactor.updateMany({
        where: {
          id: factor.id,
          OR: [{ lastUsedStep: null }, { lastUsedStep: { lt: BigInt(step) } }],
        },
        data: {
          lastUsedStep: BigInt(step),
          ...(factor.status === 'pending' ? { status: 'active', activatedAt: new Date() } : {}),
        },
      });
      if (count !== 1) return null;
      if (factor.status === 'pending')
        await this.emit(
          MfaEnrolled,
          tenant.id,
          { tenantId: tenant.id, userId: user.id, method: 'totp' },
          tx,
        );
      await this.emit(
        SignInSucceeded,
        tenant.id,
        {
          tenantId: tenant.id,
          userId: user.id,
          method: 'pwd+otp',
          amr,
          tokenId,
          ...(sourceIp ? { sourceIp } : {}),
        },
        tx,
      );
      // Last, still in the transaction: if signing fails (no key loaded), the step and
      // the event are rolled back with it.
      return this.tokens.issueAccessToken({
        tenantId: tenant.id,
        userId: user.id,
        roles: user.roles,
        amr,
        authTime: new Date(ticket.passwordAt),
        tokenId,
      });
    });
    if (!issued) throw await fail('otp_reused');
    await this.throttle.clearFailures(tenant.id, user.username);
    this.metrics.attempt('otp', 'success');
    return { accessToken: issued.token, tokenType: 'Bearer', expiresAt: issued.expiresAt };
  }
}
