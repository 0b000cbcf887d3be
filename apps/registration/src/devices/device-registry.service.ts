/**
 * Device registration and lifecycle. A registration is checked in full (token,
 * CSR signature and key policy, transport key, TPM attestation, tenant policy)
 * and the certificate signed before one short transaction takes the join-token
 * use, stores the device and its certificate and writes the event to the outbox.
 * A refused registration stores nothing but its device.registration_failed event.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  DeviceAssertionError,
  type DeviceAssertionErrorCode,
  DeviceAssertionVerifier,
  DeviceKeyChecker,
  DeviceKeyError,
  TpmAttestationError,
  verifyTpmAttestation,
  X509Error,
} from '@latchkey/crypto';
import {
  createEvent,
  DeviceCertificateRenewed,
  DeviceDeleted,
  DeviceDisabled,
  DeviceEnabled,
  DeviceRegistered,
  DeviceRegistrationFailed,
  DEVICE_REGISTRATION_FAILURE_REASONS,
  OutboxRelay,
  outboxRecord,
} from '@latchkey/events';
import {
  AccessTokenVerifier,
  DomainError,
  type ErrorKind,
  keyCodecs,
  keyset,
  parseRequest,
  type Principal,
} from '@latchkey/service-kit';
import { decodeJwt } from 'jose';
import { z } from 'zod';
import { REGISTRATION_CONFIG, type RegistrationConfig } from '../config';
import { type Device, type Prisma, PrismaClient, type Tenant } from '../generated/prisma/client';
import { hashJoinToken, JoinTokenRefused, JoinTokens } from '../join-tokens/join-tokens.service';
import { TenantDirectory, tenantNotReady } from '../tenants/tenant-directory.service';
import { DeviceAssertionJtis } from './device-assertion-jtis';
import { RegistrationWriter } from './registration-writer';

type FailureReason = (typeof DEVICE_REGISTRATION_FAILURE_REASONS)[number];

/** Scope of a user access token that may register devices (besides the admin role). */
export const DEVICE_REGISTER_SCOPE = 'devices:register';

const bytes = z
  .union([z.instanceof(Uint8Array), z.string().max(16384).base64('must be base64')])
  .transform((v) => (typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.from(v)))
  .refine((b) => b.length > 0 && b.length <= 8192, 'must be 1 to 8192 bytes');

const tpmAttestation = z.object({
  x5c: z.array(bytes).min(1, 'is required').max(5),
  certInfo: bytes,
  pubArea: bytes,
  sig: bytes,
  alg: z.number().int(),
});

const PEM_CSR =
  /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

export const registerDeviceCommand = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  joinToken: z.string().max(512).default(''),
  csrPem: z
    .string()
    .max(16384)
    .refine((v) => PEM_CSR.test(v.trim() + '\n'), 'must be a PEM "CERTIFICATE REQUEST"'),
  transportPublicKey: z.string().min(1, 'is required').max(16384),
  displayName: z.string().trim().min(1, 'is required').max(256),
  osType: z.string().trim().min(1, 'is required').max(64),
  osVersion: z.string().trim().max(64),
  joinType: z.enum(['registered', 'joined']),
  tpmAttestation: tpmAttestation.nullish(),
  softwareKeyStorage: z.boolean().default(false),
});

const ids = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  deviceId: z.string().uuid('must be a UUID'),
});

const listCommand = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  pageSize: z
    .number()
    .int()
    .min(0)
    .max(500)
    .transform((n) => n || 50),
  pageToken: z.string().max(512).default(''),
  status: z.enum(['active', 'disabled', 'deleted']).optional(),
  osType: z.string().max(64).optional(),
  attestationLevel: z.enum(['none', 'software', 'tpm']).optional(),
  displayNamePrefix: z.string().max(256).optional(),
});

/** ListDevices' order: oldest first, by (createdAt, id). */
const devicePages = keyset({
  sortKey: 'createdAt',
  sort: keyCodecs.date,
  id: keyCodecs.uuid,
  direction: 'asc',
});

const renewCommand = ids.extend({
  csrPem: z.string().min(1, 'is required').max(16384),
  deviceAssertion: z.string().min(1, 'is required').max(32768),
});

export interface IssuedDevice {
  device: Device;
  certificatePem: string;
  chainPem: string[];
}

/**
 * How a device assertion for the self-read is refused: each failure its own
 * reason. Only a deleted device reaches DEVICE_NOT_ACTIVE (the self-read
 * accepts active and disabled devices).
 */
const SELF_REFUSALS: Record<DeviceAssertionErrorCode, [ErrorKind, string]> = {
  MALFORMED_ASSERTION: ['UNAUTHENTICATED', 'DEVICE_ASSERTION_MALFORMED'],
  UNKNOWN_DEVICE: ['UNAUTHENTICATED', 'DEVICE_UNKNOWN'],
  DEVICE_NOT_ACTIVE: ['FAILED_PRECONDITION', 'DEVICE_DELETED'],
  UNTRUSTED_CERTIFICATE: ['UNAUTHENTICATED', 'DEVICE_CERTIFICATE_UNTRUSTED'],
  BAD_SIGNATURE: ['UNAUTHENTICATED', 'DEVICE_ASSERTION_SIGNATURE_INVALID'],
  WRONG_AUDIENCE: ['UNAUTHENTICATED', 'DEVICE_ASSERTION_WRONG_AUDIENCE'],
  STALE_ASSERTION: ['UNAUTHENTICATED', 'DEVICE_ASSERTION_STALE'],
  NONCE_MISMATCH: ['UNAUTHENTICATED', 'DEVICE_ASSERTION_INVALID'],
  REPLAYED_ASSERTION: ['UNAUTHENTICATED', 'DEVICE_ASSERTION_REPLAYED'],
};

/** Refusals that follow from the tenant's device policy (TPM requirement and roots). */
const POLICY_REFUSALS = new Set(['ATTESTATION_REQUIRED', 'ATTESTATION_INVALID']);

/** Error reasons a refused registration is recorded with. */
const FAILURE_OF_REASON: Record<string, FailureReason> = {
  INVALID_DEVICE_REGISTRATION: 'invalid_request',
  MALFORMED_CSR: 'malformed_csr',
  CSR_SIGNATURE_INVALID: 'csr_signature_invalid',
  KEY_NOT_ALLOWED: 'key_not_allowed',
  TRANSPORT_KEY_NOT_ALLOWED: 'malformed_transport_key',
  MALFORMED_TRANSPORT_KEY: 'malformed_transport_key',
  INVALID_ACCESS_TOKEN: 'access_token_invalid',
  ENROLLMENT_AUTHORIZATION_REQUIRED: 'access_token_invalid',
  TENANT_MISMATCH: 'permission_denied',
  PERMISSION_REQUIRED: 'permission_denied',
  ATTESTATION_INVALID: 'attestation_invalid',
  ATTESTATION_REQUIRED: 'attestation_required',
};

const X509_REASONS: Record<X509Error['code'], string> = {
  MALFORMED_CSR: 'MALFORMED_CSR',
  CSR_SIGNATURE_INVALID: 'CSR_SIGNATURE_INVALID',
  KEY_NOT_ALLOWED: 'KEY_NOT_ALLOWED',
  MALFORMED_PUBLIC_KEY: 'MALFORMED_TRANSPORT_KEY',
  MALFORMED_CERTIFICATE: 'MALFORMED_CERTIFICATE',
};

function x509Failure(err: unknown, field: string): never {
  if (err instanceof X509Error)
    throw DomainError.invalidArgument(X509_REASONS[err.code], `${field}: ${err.message}`, [
      { field, description: err.message },
    ]);
  throw err;
}

/** A key refused by the DeviceKeyChecker, as the request field it came from. */
function keyFailure(err: unknown): never {
  return x509Failure(err, err instanceof DeviceKeyError ? err.field : 'csrPem');
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

function csrDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

/**
 * Refuses a device assertion without a `jti`, before anything is looked up: the
 * verifier takes a nonce instead, but a device's requests to registration have
 * no nonce to carry, and only a jti makes an assertion single-use here. One
 * that does not decode is left to the verifier, which says what is wrong.
 */
function requireJti(deviceAssertion: string): void {
  let claims: { jti?: unknown };
  try {
    claims = decodeJwt(deviceAssertion);
  } catch {
    return;
  }
  if (typeof claims.jti !== 'string' || !claims.jti)
    throw new DomainError(
      'UNAUTHENTICATED',
      'DEVICE_ASSERTION_MALFORMED',
      'the device assertion needs a jti (each one is accepted once)',
    );
}

@Injectable()
export class DeviceRegistry {
  private readonly assertions: DeviceAssertionVerifier;
  private readonly selfAssertions: DeviceAssertionVerifier<Device & { certificatePem: string }>;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
    @Inject(AccessTokenVerifier) private readonly accessTokens: AccessTokenVerifier,
    @Inject(REGISTRATION_CONFIG) config: RegistrationConfig,
    private readonly tenants: TenantDirectory,
    private readonly joinTokens: JoinTokens,
    private readonly writer: RegistrationWriter,
    private readonly jtis: DeviceAssertionJtis,
    private readonly keys: DeviceKeyChecker,
  ) {
    const audience = config.DEVICE_ASSERTION_AUDIENCE;
    // One record of used jtis for every device assertion registration accepts (self-read and
    // renewal alike): an assertion is accepted once, whichever request it came with. The
    // verifier remembers the jti only once the signature, certificate, aud and iat passed, so
    // an unsigned or foreign assertion stores nothing; the insert is atomic across instances.
    const rememberJti = (jti: string, expiresAt: Date) =>
      this.jtis.remember(`${audience}:${jti}`, expiresAt);
    this.assertions = new DeviceAssertionVerifier(
      {
        tenantCaCertificate: async (tenantId) =>
          (await this.db.tenantCa.findUnique({ where: { tenantId } }))?.certificatePem ?? null,
        device: async (tenantId, deviceId) => {
          const d = await this.db.device.findFirst({ where: { id: deviceId, tenantId } });
          return d?.certificatePem ? { status: d.status, certificatePem: d.certificatePem } : null;
        },
      },
      { audience, rememberJti },
    );
    this.selfAssertions = new DeviceAssertionVerifier(
      {
        tenantCaCertificate: async (tenantId) =>
          (await this.db.tenantCa.findUnique({ where: { tenantId } }))?.certificatePem ?? null,
        device: async (tenantId, deviceId) => {
          const d = await this.db.device.findFirst({ where: { id: deviceId, tenantId } });
          return d?.certificatePem ? { ...d, certificatePem: d.certificatePem } : null;
        },
      },
      {
        audience,
        // A disabled device may still read that it is disabled: its certificate stays valid
        // while it is disabled and the assertion is checked in full (signature, certificate,
        // aud, iat, jti), so only the holder of its device key learns it. A deleted device's
        // certificate is revoked: it is refused (DEVICE_DELETED), as every other service does.
        acceptStatuses: ['active', 'disabled'],
        rememberJti,
      },
    );
  }

  /**
   * The calling device's own record (GET /v1/devices/self, GetSelfDevice): the
   * device is the one the assertion names (`tid`, `sub`) and whose current key
   * signed it, so no request can name another device. The assertion needs a
   * `jti`, accepted once. Reads only: nothing changes, not even last-seen.
   */
  async self(deviceAssertion: string | undefined): Promise<Device> {
    if (!deviceAssertion)
      throw new DomainError(
        'UNAUTHENTICATED',
        'DEVICE_ASSERTION_REQUIRED',
        'a device assertion is required (authorization: DeviceAssertion <compact JWS>)',
      );
    requireJti(deviceAssertion);
    try {
      return (await this.selfAssertions.verify(deviceAssertion)).device;
    } catch (err) {
      if (!(err instanceof DeviceAssertionError)) throw err;
      const [kind, reason] = SELF_REFUSALS[err.code];
      throw new DomainError(
        kind,
        reason,
        err.code === 'DEVICE_NOT_ACTIVE'
          ? 'the device was deleted: its certificate is revoked'
          : `the device assertion is not valid: ${err.message}`,
      );
    }
  }

  async register(input: unknown, bearerToken?: string): Promise<IssuedDevice> {
    let cmd: z.infer<typeof registerDeviceCommand>;
    try {
      cmd = parseRequest(registerDeviceCommand, input, 'INVALID_DEVICE_REGISTRATION');
    } catch (err) {
      await this.recordInvalidRequest(input, err);
      throw err;
    }
    let tenant = await this.tenants.recentTenant(cmd.tenantId);
    let joinTokenId: string | undefined;
    try {
      // 1. Who authorizes this enrollment (cheap checks first; a join token's use is taken
      // when the registration is stored).
      let enrollment: Enrollment;
      if (cmd.joinToken) {
        joinTokenId = await this.joinTokens.precheck(cmd.joinToken, cmd.tenantId, cmd.displayName);
        enrollment = { kind: 'join_token', actorId: `join-token:${joinTokenId}`, joinTokenId };
      } else if (bearerToken) {
        const principal = await this.accessTokens.verify(bearerToken);
        assertMayRegister(principal, cmd.tenantId);
        enrollment = { kind: 'access_token', actorId: principal.subject };
      } else {
        throw new DomainError(
          'UNAUTHENTICATED',
          'ENROLLMENT_AUTHORIZATION_REQUIRED',
          'a join token or a user access token is required',
        );
      }
      // Decided on a cached tenant row: a registration is stored only under the policy it was
      // checked against, and one refused by the policy is decided again on a fresh row.
      for (let fresh = false; ; fresh = true) {
        if (!tenant) throw tenantNotReady();
        try {
          const registered = await this.registerChecked(cmd, tenant, enrollment);
          if (registered !== 'policy_changed') return registered;
          if (fresh)
            throw DomainError.unavailable(
              'DEVICE_POLICY_CHANGING',
              "the tenant's device policy changed while registering; retry",
            );
        } catch (err) {
          if (fresh || !(err instanceof DomainError) || !POLICY_REFUSALS.has(err.reason)) throw err;
        }
        this.tenants.forgetTenant(cmd.tenantId);
        tenant = await this.tenants.recentTenant(cmd.tenantId);
      }
    } catch (err) {
      if (tenant) await this.recordFailure(cmd, err, joinTokenId);
      throw err;
    }
  }

  /**
   * Checks the keys, attestation and tenant policy, signs the certificate and
   * stores the registration (RegistrationWriter). `policy_changed`: the tenant's
   * policy is no longer `tenant`'s, nothing was stored.
   */
  private async registerChecked(
    cmd: z.infer<typeof registerDeviceCommand>,
    tenant: Tenant,
    enrollment: Enrollment,
  ): Promise<IssuedDevice | 'policy_changed'> {
    {
      // 2. The device key (proof of possession, policy) and the transport key.
      // (On the key-check worker threads when there are any: most of a registration's CPU.)
      const { csr, transport } = await this.keys
        .check({ csrPem: cmd.csrPem, transportPublicKey: cmd.transportPublicKey })
        .catch(keyFailure);
      if (!transport) throw new Error('the transport key was not checked');
      if (transport.thumbprint === csr.thumbprint)
        throw DomainError.invalidArgument(
          'TRANSPORT_KEY_NOT_ALLOWED',
          'transportPublicKey: must differ from the device key',
        );

      // 3. How the device key's storage is proven.
      let attestationLevel: 'none' | 'software' | 'tpm' = cmd.softwareKeyStorage
        ? 'software'
        : 'none';
      if (cmd.tpmAttestation) {
        try {
          await verifyTpmAttestation(cmd.tpmAttestation, {
            trustAnchorsPem: tenant.tpmRootsPem,
            expectedExtraData: sha256(csrDer(cmd.csrPem)),
            expectedSpki: csr.spki,
          });
        } catch (err) {
          if (!(err instanceof TpmAttestationError)) throw err;
          throw DomainError.invalidArgument(
            'ATTESTATION_INVALID',
            `tpmAttestation: ${err.message}`,
            [{ field: 'tpmAttestation', description: err.message }],
          );
        }
        attestationLevel = 'tpm';
      } else if (tenant.requireTpm) {
        throw new DomainError(
          'FAILED_PRECONDITION',
          'ATTESTATION_REQUIRED',
          'the tenant requires a TPM attestation of the device key',
        );
      }

      // 4. The certificate, then one statement stores it with the device and the event.
      const ca = await this.tenants.authority(cmd.tenantId);
      const deviceId = randomUUID();
      const issued = await ca.issue({
        tenantId: cmd.tenantId,
        deviceId,
        spki: csr.spki,
        validityDays: tenant.certificateValidityDays,
      });
      const event = createEvent(DeviceRegistered, cmd.tenantId, {
        tenantId: cmd.tenantId,
        deviceId,
        displayName: cmd.displayName,
        osType: cmd.osType,
        osVersion: cmd.osVersion,
        joinType: cmd.joinType,
        attestationLevel,
        keyKind: csr.keyKind,
        deviceKeyThumbprint: csr.thumbprint,
        certificateSerial: issued.serialHex,
        enrollment: enrollment.kind,
        ...(enrollment.joinTokenId ? { joinTokenId: enrollment.joinTokenId } : {}),
        actorId: enrollment.actorId,
      });
      const at = new Date();
      const device: Device = {
        id: deviceId,
        tenantId: cmd.tenantId,
        displayName: cmd.displayName,
        osType: cmd.osType,
        osVersion: cmd.osVersion,
        joinType: cmd.joinType,
        status: 'active',
        attestationLevel,
        csrPem: cmd.csrPem.trim(),
        transportPublicKey: transport.pem,
        transportKeyThumbprint: transport.thumbprint,
        deviceKeySpki: new Uint8Array(csr.spki),
        deviceKeyThumbprint: csr.thumbprint,
        certificateSerial: issued.serialHex,
        certificatePem: issued.certificatePem,
        certificateNotAfter: issued.notAfter,
        enrollment: enrollment.kind,
        joinTokenId: enrollment.joinTokenId ?? null,
        enrolledBy: enrollment.actorId,
        lastSeenAt: at,
        createdAt: at,
        updatedAt: at,
      };
      const outcome = await this.writer.write({
        device,
        certificateNotBefore: issued.notBefore,
        ...(enrollment.kind === 'join_token'
          ? { joinTokenHash: hashJoinToken(cmd.joinToken) }
          : {}),
        event: outboxRecord(event),
        policy: tenant,
      });
      if (outcome === 'policy_changed') return outcome;
      if (outcome === 'not_admitted')
        throw await this.joinTokens.refusal(cmd.joinToken, cmd.tenantId, cmd.displayName);
      this.relay.notify();
      return { device, certificatePem: issued.certificatePem, chainPem: ca.chainPem };
    }
  }

  /** A malformed request names a known tenant: record it (as far as its fields can be trusted). */
  private async recordInvalidRequest(input: unknown, err: unknown): Promise<void> {
    const raw = (typeof input === 'object' && input ? input : {}) as Record<string, unknown>;
    const tenantId = z.string().uuid().safeParse(raw.tenantId);
    if (!tenantId.success || !(await this.tenants.recentTenant(tenantId.data).catch(() => null)))
      return;
    const text = (v: unknown, max: number) =>
      typeof v === 'string' && v.length <= max ? v : undefined;
    await this.recordFailure(
      {
        tenantId: tenantId.data,
        displayName: text(raw.displayName, 256),
        osType: text(raw.osType, 64),
      },
      err,
      undefined,
    );
  }

  /** Writes device.registration_failed for a refusal (never for an outage or a bug). */
  private async recordFailure(
    cmd: { tenantId: string; displayName?: string; osType?: string },
    err: unknown,
    joinTokenId: string | undefined,
  ): Promise<void> {
    let reason: FailureReason | undefined;
    if (err instanceof JoinTokenRefused) {
      reason = err.refusal;
      joinTokenId = err.joinTokenId;
    } else if (err instanceof DomainError) reason = FAILURE_OF_REASON[err.reason];
    if (!reason) return;
    const event = createEvent(DeviceRegistrationFailed, cmd.tenantId, {
      tenantId: cmd.tenantId,
      reason,
      ...(joinTokenId ? { joinTokenId, actorId: `join-token:${joinTokenId}` } : {}),
      ...(cmd.displayName ? { displayName: cmd.displayName } : {}),
      ...(cmd.osType ? { osType: cmd.osType } : {}),
    });
    try {
      await this.db.outboxEvent.create({ data: outboxRecord(event) });
      this.relay.notify();
    } catch {
      // The refusal stands even when its record cannot be written.
    }
  }

  async get(tenantId: string, deviceId: string): Promise<Device> {
    const key = parseRequest(ids, { tenantId, deviceId });
    const device = await this.db.device.findFirst({
      where: { id: key.deviceId, tenantId: key.tenantId },
    });
    if (!device) throw DomainError.notFound('DEVICE_NOT_FOUND', 'no such device in this tenant');
    return device;
  }

  async list(input: unknown): Promise<{ devices: Device[]; nextPageToken: string }> {
    const cmd = parseRequest(listCommand, input);
    const where: Prisma.DeviceWhereInput = { tenantId: cmd.tenantId };
    if (cmd.status) where.status = cmd.status;
    if (cmd.osType) where.osType = { equals: cmd.osType, mode: 'insensitive' };
    if (cmd.attestationLevel) where.attestationLevel = cmd.attestationLevel;
    if (cmd.displayNamePrefix) where.displayName = { startsWith: cmd.displayNamePrefix };
    const page = await devicePages.page(cmd, ({ where: after, orderBy, take }) =>
      this.db.device.findMany({ where: { ...where, ...after }, orderBy, take }),
    );
    return { devices: page.items, nextPageToken: page.nextPageToken };
  }

  disable(principal: Principal, input: unknown): Promise<Device> {
    return this.changeStatus(principal, input, 'active', 'disabled');
  }

  enable(principal: Principal, input: unknown): Promise<Device> {
    return this.changeStatus(principal, input, 'disabled', 'active');
  }

  private async changeStatus(
    principal: Principal,
    input: unknown,
    from: 'active' | 'disabled',
    to: 'active' | 'disabled',
  ): Promise<Device> {
    const cmd = parseRequest(ids.extend({ reason: z.string().max(256).default('') }), input);
    const device = await this.db.$transaction(async (tx) => {
      const current = await this.lockDevice(tx, cmd.tenantId, cmd.deviceId);
      if (current.status === 'deleted')
        throw new DomainError('FAILED_PRECONDITION', 'DEVICE_DELETED', 'the device is deleted');
      if (current.status !== from) return current; // already there: idempotent, no event
      const updated = await tx.device.update({ where: { id: current.id }, data: { status: to } });
      const def = to === 'disabled' ? DeviceDisabled : DeviceEnabled;
      const event = createEvent(def, cmd.tenantId, {
        tenantId: cmd.tenantId,
        deviceId: current.id,
        actorId: principal.subject,
        ...(cmd.reason ? { reason: cmd.reason } : {}),
      });
      await tx.outboxEvent.create({ data: outboxRecord(event) });
      return updated;
    });
    this.relay.notify();
    return device;
  }

  async delete(principal: Principal, input: unknown): Promise<Device> {
    const cmd = parseRequest(ids.extend({ reason: z.string().max(256).default('') }), input);
    const device = await this.db.$transaction(async (tx) => {
      const current = await this.lockDevice(tx, cmd.tenantId, cmd.deviceId);
      if (current.status === 'deleted') return current;
      const now = new Date();
      const live = await tx.deviceCertificate.findMany({
        where: { deviceId: current.id, revokedAt: null },
        select: { serial: true },
      });
      await tx.deviceCertificate.updateMany({
        where: { deviceId: current.id, revokedAt: null },
        data: { revokedAt: now, revocationReason: 'cessationOfOperation' },
      });
      await tx.tenantCa.update({
        where: { tenantId: cmd.tenantId },
        data: { crlNumber: { increment: 1 } },
      });
      const updated = await tx.device.update({
        where: { id: current.id },
        data: { status: 'deleted' },
      });
      const event = createEvent(DeviceDeleted, cmd.tenantId, {
        tenantId: cmd.tenantId,
        deviceId: current.id,
        actorId: principal.subject,
        ...(cmd.reason ? { reason: cmd.reason } : {}),
        revokedSerials: live.map((c) => c.serial).slice(0, 64),
      });
      await tx.outboxEvent.create({ data: outboxRecord(event) });
      return updated;
    });
    this.relay.notify();
    return device;
  }

  /**
   * Renews the certificate of an active device for a new CSR, authorized by a
   * device assertion signed by the current device key over the new CSR. The
   * assertion needs a `jti` and is accepted once: its jti is taken as soon as
   * the assertion verifies (signature, certificate, aud, iat), before the CSR is
   * looked at, so a captured request re-submitted, even concurrently, is refused
   * DEVICE_ASSERTION_REPLAYED (or, if its x5c names the certificate the
   * renewal replaced, DEVICE_ASSERTION_INVALID) and issues nothing. A renewal
   * refused after that (a bad CSR, one the assertion does not cover, a
   * concurrent renewal) has used its assertion too: the device signs a new one.
   */
  async renew(input: unknown): Promise<IssuedDevice> {
    const cmd = parseRequest(renewCommand, input, 'INVALID_RENEWAL');
    requireJti(cmd.deviceAssertion);
    let assertion;
    try {
      assertion = await this.assertions.verify(cmd.deviceAssertion, {
        tenantId: cmd.tenantId,
        deviceId: cmd.deviceId,
      });
    } catch (err) {
      if (!(err instanceof DeviceAssertionError)) throw err;
      if (err.code === 'DEVICE_NOT_ACTIVE')
        throw new DomainError('FAILED_PRECONDITION', 'DEVICE_NOT_ACTIVE', err.message);
      if (err.code === 'REPLAYED_ASSERTION')
        throw new DomainError(
          'UNAUTHENTICATED',
          'DEVICE_ASSERTION_REPLAYED',
          'the device assertion was used before (each one is accepted once): sign a new one',
        );
      throw new DomainError('UNAUTHENTICATED', 'DEVICE_ASSERTION_INVALID', err.message);
    }
    const { csr } = await this.keys.check({ csrPem: cmd.csrPem }).catch(keyFailure);
    if (assertion.claims.csr_sha256 !== sha256(csrDer(cmd.csrPem)).toString('base64url'))
      throw new DomainError(
        'UNAUTHENTICATED',
        'DEVICE_ASSERTION_INVALID',
        'the device assertion does not cover this CSR (csr_sha256)',
      );
    const tenant = await this.tenants.tenant(cmd.tenantId);
    const ca = await this.tenants.authority(cmd.tenantId);
    const previousSerial = assertion.certificate.serialNumber.toLowerCase();
    const issued = await ca.issue({
      tenantId: cmd.tenantId,
      deviceId: cmd.deviceId,
      spki: csr.spki,
      validityDays: tenant.certificateValidityDays,
    });
    const device = await this.db.$transaction(async (tx) => {
      const current = await this.lockDevice(tx, cmd.tenantId, cmd.deviceId);
      // The assertion was made with the certificate in force; a concurrent renewal wins alone.
      if (current.status !== 'active' || current.certificateSerial !== previousSerial)
        throw new DomainError(
          'FAILED_PRECONDITION',
          'CERTIFICATE_SUPERSEDED',
          'the device certificate changed while renewing; retry with the current one',
        );
      const now = new Date();
      await tx.deviceCertificate.updateMany({
        where: { serial: previousSerial, revokedAt: null },
        data: { revokedAt: now, revocationReason: 'superseded' },
      });
      await tx.tenantCa.update({
        where: { tenantId: cmd.tenantId },
        data: { crlNumber: { increment: 1 } },
      });
      await tx.deviceCertificate.create({
        data: {
          serial: issued.serialHex,
          tenantId: cmd.tenantId,
          deviceId: cmd.deviceId,
          notBefore: issued.notBefore,
          notAfter: issued.notAfter,
        },
      });
      const updated = await tx.device.update({
        where: { id: current.id },
        data: {
          certificateSerial: issued.serialHex,
          certificatePem: issued.certificatePem,
          certificateNotAfter: issued.notAfter,
          deviceKeySpki: new Uint8Array(csr.spki),
          deviceKeyThumbprint: csr.thumbprint,
          lastSeenAt: now,
        },
      });
      const event = createEvent(DeviceCertificateRenewed, cmd.tenantId, {
        tenantId: cmd.tenantId,
        deviceId: current.id,
        actorId: `device:${current.id}`,
        previousSerial,
        certificateSerial: issued.serialHex,
        notAfter: issued.notAfter.toISOString(),
        deviceKeyThumbprint: csr.thumbprint,
        keyChanged: csr.thumbprint !== current.deviceKeyThumbprint,
      });
      await tx.outboxEvent.create({ data: outboxRecord(event) });
      return updated;
    });
    this.relay.notify();
    return { device, certificatePem: issued.certificatePem, chainPem: ca.chainPem };
  }

  private async lockDevice(
    tx: Prisma.TransactionClient,
    tenantId: string,
    deviceId: string,
  ): Promise<Device> {
    await tx.$executeRaw`SELECT 1 FROM devices WHERE id = ${deviceId}::uuid FOR UPDATE`;
    const device = await tx.device.findFirst({ where: { id: deviceId, tenantId } });
    if (!device) throw DomainError.notFound('DEVICE_NOT_FOUND', 'no such device in this tenant');
    return device;
  }
}

/** Who authorizes a registration. */
type Enrollment =
  | { kind: 'join_token'; actorId: string; joinTokenId: string }
  | { kind: 'access_token'; actorId: string; joinTokenId?: undefined };

function assertMayRegister(principal: Principal, tenantId: string): void {
  if (principal.tenantId !== tenantId)
    throw new DomainError(
      'PERMISSION_DENIED',
      'TENANT_MISMATCH',
      'the token does not grant access to this tenant',
    );
  if (!principal.scopes.includes(DEVICE_REGISTER_SCOPE) && !principal.roles.includes('admin'))
    throw new DomainError(
      'PERMISSION_DENIED',
      'PERMISSION_REQUIRED',
      `registering a device needs the ${DEVICE_REGISTER_SCOPE} scope`,
    );
}
