/** The credential lifecycle after provisioning: list, get (for auth), revoke, delete. */
import { Inject, Injectable } from '@nestjs/common';
import { provisioningV1 } from '@latchkey/contracts';
import {
  createEvent,
  CredentialDeleted,
  CredentialRevoked,
  OutboxRelay,
  outboxRecord,
} from '@latchkey/events';
import {
  assertTenantAccess,
  DomainError,
  keyCodecs,
  keyset,
  matchingKey,
  parseRequest,
  toDomainError,
  type Principal,
} from '@latchkey/service-kit';
import { z } from 'zod';
import { PrismaClient, type Credential, type Prisma } from '../generated/prisma/client';
import {
  DEVICE_ASSERTION_VERIFIER,
  type DeviceAssertionVerifier,
  PROVISIONING_AUDIENCE,
} from '../devices/device-assertion';
import { KeyPolicyService } from '../policies/key-policy.service';
import { refusalError } from './provisioning-refusal';
import { secondFactorProblem } from './second-factor';

const { CredentialStatus: S, AttestationLevel: L } = provisioningV1;
const credentialId = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a credential id');
const uuid = z.string().uuid('must be a UUID');

const listRequest = z.object({
  tenantId: uuid,
  userId: z.string().max(128).optional().default(''),
  deviceId: uuid.or(z.literal('')).optional().default(''),
  status: z.nativeEnum(S).optional().default(S.CREDENTIAL_STATUS_UNSPECIFIED),
  attestationLevel: z.nativeEnum(L).optional().default(L.ATTESTATION_LEVEL_UNSPECIFIED),
  pageSize: z.coerce.number().int().min(0).max(200).optional().default(0),
  pageToken: z.string().max(512).optional().default(''),
});

/** ListCredentials' order: newest first, by (createdAt, id). */
const credentialPages = keyset({
  sortKey: 'createdAt',
  sort: keyCodecs.date,
  id: matchingKey(/^[A-Za-z0-9_-]{43}$/),
  direction: 'desc',
});

const isAdmin = (p: Principal) => p.roles.includes('admin') || p.roles.includes('operator');

@Injectable()
export class CredentialsService {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
    @Inject(KeyPolicyService) private readonly policies: KeyPolicyService,
    @Inject(DEVICE_ASSERTION_VERIFIER) private readonly assertions: DeviceAssertionVerifier,
  ) {}

  async list(caller: Principal, input: unknown) {
    const req = parseRequest(listRequest, input, 'INVALID_LIST_REQUEST');
    assertTenantAccess(caller, req.tenantId);
    let userId = req.userId;
    if (!isAdmin(caller)) {
      if (userId && userId !== caller.subject)
        throw new DomainError(
          'PERMISSION_DENIED',
          'ROLE_REQUIRED',
          "listing another user's keys requires the admin role",
        );
      userId = caller.subject;
    }
    const now = new Date();
    const where: Prisma.CredentialWhereInput = { tenantId: req.tenantId };
    if (userId) where.userId = userId;
    if (req.deviceId) where.deviceId = req.deviceId;
    if (req.attestationLevel !== L.ATTESTATION_LEVEL_UNSPECIFIED)
      where.attestationLevel =
        req.attestationLevel === L.ATTESTATION_LEVEL_TPM ? 'tpm' : 'software';
    switch (req.status) {
      case S.CREDENTIAL_STATUS_ACTIVE:
        Object.assign(where, {
          status: 'active',
          OR: [{ expiresAt: null }, { expiresAt: { gt: now } }],
        });
        break;
      case S.CREDENTIAL_STATUS_EXPIRED:
        Object.assign(where, { status: 'active', expiresAt: { lte: now } });
        break;
      case S.CREDENTIAL_STATUS_SUSPENDED:
        where.status = 'suspended';
        break;
      case S.CREDENTIAL_STATUS_REVOKED:
        where.status = 'revoked';
        break;
      default:
        break;
    }
    const page = await credentialPages.page(
      { pageSize: req.pageSize || 50, pageToken: req.pageToken },
      ({ where: after, orderBy, take }) =>
        this.db.credential.findMany({ where: { AND: [where, after] }, orderBy, take }),
    );
    return { credentials: page.items, nextPageToken: page.nextPageToken };
  }

  /** Internal read for auth's key sign-in. */
  async get(input: unknown): Promise<Credential> {
    const req = parseRequest(
      z.object({ tenantId: uuid, credentialId }),
      input,
      'INVALID_CREDENTIAL_REQUEST',
    );
    const c = await this.db.credential.findFirst({
      where: { id: req.credentialId, tenantId: req.tenantId },
    });
    if (!c) throw DomainError.notFound('CREDENTIAL_NOT_FOUND', 'no such credential in this tenant');
    return c;
  }

  async revoke(caller: Principal, input: unknown): Promise<Credential> {
    const req = parseRequest(
      z.object({
        tenantId: uuid,
        credentialId,
        reason: z.string().trim().min(1, 'is required').max(256),
      }),
      input,
      'INVALID_REVOKE_REQUEST',
    );
    assertTenantAccess(caller, req.tenantId);
    const found = await this.db.credential.findFirst({
      where: { id: req.credentialId, tenantId: req.tenantId },
    });
    const admin = isAdmin(caller);
    // A user learns nothing about keys that are not theirs.
    if (!found || (!admin && found.userId !== caller.subject))
      throw DomainError.notFound('CREDENTIAL_NOT_FOUND', 'no such credential in this tenant');
    if (!admin) {
      const policy = await this.policies.effective(req.tenantId);
      const mfa = secondFactorProblem(caller, policy.mfaFreshnessSeconds);
      if (mfa) throw refusalError(mfa);
    }
    if (found.status === 'revoked') return found;
    const revoked = await this.db.$transaction(async (tx) => {
      const n = await tx.credential.updateMany({
        where: { id: found.id, status: { not: 'revoked' } },
        data: { status: 'revoked', statusReason: req.reason, revokedAt: new Date() },
      });
      if (n.count) {
        const event = createEvent(CredentialRevoked, found.tenantId, {
          tenantId: found.tenantId,
          userId: found.userId,
          deviceId: found.deviceId,
          credentialId: found.id,
          cause: admin && found.userId !== caller.subject ? 'admin' : 'user',
          reason: req.reason,
          actorId: caller.subject,
        });
        await tx.outboxEvent.create({ data: outboxRecord(event) });
      }
      return tx.credential.findUniqueOrThrow({ where: { id: found.id } });
    });
    this.relay.notify();
    return revoked;
  }

  /** The device removes its own key, proven by a device assertion (no user token). */
  async deleteByDevice(input: unknown): Promise<void> {
    const req = parseRequest(
      z.object({
        deviceId: uuid,
        credentialId,
        deviceAssertion: z.string().min(1, 'is required').max(16_384),
      }),
      input,
      'INVALID_DELETE_REQUEST',
    );
    const found = await this.db.credential.findUnique({ where: { id: req.credentialId } });
    const notFound = () =>
      DomainError.notFound('CREDENTIAL_NOT_FOUND', 'no such credential on this device');
    if (!found || found.deviceId !== req.deviceId) throw notFound();
    try {
      await this.assertions.verify(req.deviceAssertion, {
        tenantId: found.tenantId,
        deviceId: req.deviceId,
        audience: PROVISIONING_AUDIENCE,
      });
    } catch (err) {
      // A dependency outage (Redis for the jti, registration) is not a bad assertion.
      if (toDomainError(err).kind === 'UNAVAILABLE') throw err;
      throw new DomainError(
        'UNAUTHENTICATED',
        'BAD_DEVICE_ASSERTION',
        'the device assertion is not valid',
      );
    }
    await this.db.$transaction(async (tx) => {
      const n = await tx.credential.deleteMany({ where: { id: found.id } });
      if (!n.count) throw notFound();
      const event = createEvent(CredentialDeleted, found.tenantId, {
        tenantId: found.tenantId,
        userId: found.userId,
        deviceId: found.deviceId,
        credentialId: found.id,
        actorId: `device:${found.deviceId}`,
      });
      await tx.outboxEvent.create({ data: outboxRecord(event) });
    });
    this.relay.notify();
  }
}
