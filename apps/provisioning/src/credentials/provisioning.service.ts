/**
 * Provisioning of a user key on a device: BeginProvisioning (second factor,
 * device, challenge) and CompleteProvisioning (key, proof, attestation, policy,
 * storage with replacement). A refusal stores nothing but its failure event.
 */
import { Inject, Injectable } from '@nestjs/common';
import { toTimestamp } from '@latchkey/contracts';
import {
  createEvent,
  CredentialProvisioned,
  CredentialProvisioningFailed,
  CredentialRevoked,
  OutboxRelay,
  outboxRecord,
  type ProvisioningFailureReason,
} from '@latchkey/events';
import {
  DomainError,
  NonceStore,
  parseRequest,
  toDomainError,
  type Principal,
} from '@latchkey/service-kit';
import { z } from 'zod';
import { PrismaClient, type Credential } from '../generated/prisma/client';
import { KEY_ALGORITHMS, type EffectiveKeyPolicy } from '../policies/key-policy';
import { toProtoKeyPolicy } from '../policies/key-policy.mapping';
import { KeyPolicyService } from '../policies/key-policy.service';
import {
  DEVICE_ASSERTION_VERIFIER,
  type DeviceAssertionVerifier,
  PROVISIONING_AUDIENCE,
} from '../devices/device-assertion';
import { RegistrationClient } from '../devices/registration.client';
import { KeyRefusal, parseCredentialKey, verifyProofOfPossession } from './credential-key';
import {
  KEY_ATTESTATION_VERIFIER,
  type KeyAttestationVerifier,
  type TpmStatement,
} from './key-attestation';
import { challengeBinding } from './challenge-binding';
import { refusalError } from './provisioning-refusal';
import { secondFactorProblem } from './second-factor';

const beginRequest = z.object({
  deviceId: z.string().uuid('must be a UUID'),
  deviceAssertion: z.string().min(1, 'is required').max(16_384),
});

const bytes = z.instanceof(Uint8Array).or(z.instanceof(Buffer));
const completeRequest = z.object({
  deviceId: z.string().uuid('must be a UUID'),
  challenge: z.string().min(1, 'is required').max(128),
  publicKeyJwk: z.string().min(1, 'is required').max(8192),
  algorithm: z.enum(KEY_ALGORITHMS, { errorMap: () => ({ message: 'must be RS256 or ES256' }) }),
  proofOfPossession: z.string().min(1, 'is required').max(16_384),
  keyAttestation: z
    .object({
      ver: z.literal('2.0', { errorMap: () => ({ message: 'must be "2.0"' }) }),
      alg: z.number().int(),
      x5c: z.array(bytes).min(1, 'needs the AIK certificate').max(8),
      sig: bytes,
      certInfo: bytes,
      pubArea: bytes,
    })
    .nullish(),
  friendlyName: z.string().trim().max(128).optional(),
});

export interface ProvisioningOutcome {
  credential: Credential;
  replacedCredentialIds: string[];
}

@Injectable()
export class ProvisioningService {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
    @Inject(KeyPolicyService) private readonly policies: KeyPolicyService,
    @Inject(NonceStore) private readonly challenges: NonceStore,
    @Inject(RegistrationClient) private readonly registration: RegistrationClient,
    @Inject(DEVICE_ASSERTION_VERIFIER) private readonly assertions: DeviceAssertionVerifier,
    @Inject(KEY_ATTESTATION_VERIFIER) private readonly attestations: KeyAttestationVerifier,
  ) {}

  async begin(caller: Principal, input: unknown) {
    const req = parseRequest(beginRequest, input, 'INVALID_PROVISIONING_REQUEST');
    const tenantId = caller.tenantId;
    const refuse = (reason: ProvisioningFailureReason, detail?: string) =>
      this.refuse(caller, req.deviceId, 'begin', reason, { detail });

    const policy = await this.policies.effective(tenantId);
    const mfa = secondFactorProblem(caller, policy.mfaFreshnessSeconds);
    if (mfa) return refuse(mfa);
    if (caller.deviceId && caller.deviceId !== req.deviceId)
      return refuse('device_tenant_mismatch', 'the token is bound to another device');

    const device = await this.registration.getDevice(tenantId, req.deviceId);
    if (!device || device.tenantId !== tenantId) return refuse('device_tenant_mismatch');
    if (device.status !== 'active')
      return refuse('device_inactive', `the device is ${device.status}`);

    try {
      await this.assertions.verify(
        req.deviceAssertion,
        { tenantId, deviceId: req.deviceId, audience: PROVISIONING_AUDIENCE },
        device,
      );
    } catch (err) {
      // A dependency outage (Redis for the jti, registration) is not a bad assertion.
      if (toDomainError(err).kind === 'UNAVAILABLE') throw err;
      return refuse('bad_device_assertion');
    }

    const { nonce, expiresAt } = await this.challenges.issue(
      challengeBinding(tenantId, req.deviceId, caller.subject),
    );
    return {
      challenge: nonce,
      expireTime: toTimestamp(expiresAt),
      policy: toProtoKeyPolicy(policy),
    };
  }

  async complete(caller: Principal, input: unknown): Promise<ProvisioningOutcome> {
    const req = parseRequest(completeRequest, input, 'INVALID_PROVISIONING_REQUEST');
    const tenantId = caller.tenantId;
    const refuse = (reason: ProvisioningFailureReason, detail?: string) =>
      this.refuse(caller, req.deviceId, 'complete', reason, { detail, algorithm: req.algorithm });

    let key;
    try {
      key = parseCredentialKey(req.publicKeyJwk, req.algorithm);
    } catch (err) {
      if (err instanceof KeyRefusal) return refuse(err.reason, err.message);
      throw err;
    }
    if (!(await verifyProofOfPossession(req.proofOfPossession, key, req.challenge)))
      return refuse('bad_proof');
    // Consumed before anything else can fail, so a challenge is good for one attempt only
    // (the policy is read meanwhile).
    const [fresh, policy] = await Promise.all([
      this.challenges.consume(
        req.challenge,
        challengeBinding(tenantId, req.deviceId, caller.subject),
      ),
      this.policies.effective(tenantId),
    ]);
    if (!fresh) return refuse('challenge_unknown_or_used');

    if (!policy.allowedAlgorithms.includes(req.algorithm)) return refuse('algorithm_not_allowed');
    let attestationIssuer: string | undefined;
    if (req.keyAttestation) {
      try {
        const statement = req.keyAttestation as TpmStatement;
        ({ aikIssuer: attestationIssuer } = await this.attestations.verify(statement, {
          tenantId,
          key: key.key,
          challenge: req.challenge,
          trustAnchorsPem: policy.tpmRootCertificatesPem,
        }));
      } catch (err) {
        // A dependency outage (Redis for the jti, registration) is not a bad assertion.
        if (toDomainError(err).kind === 'UNAVAILABLE') throw err;
        return refuse(
          'bad_attestation',
          err instanceof Error ? err.message.slice(0, 200) : undefined,
        );
      }
    } else if (policy.requireTpm) {
      return refuse('policy_tpm_required');
    }

    const outcome = await this.store(caller, req.deviceId, policy, {
      id: key.credentialId,
      publicKeyJwk: key.jwk as object,
      algorithm: req.algorithm,
      attestationLevel: attestationIssuer !== undefined ? 'tpm' : 'software',
      attestationIssuer: attestationIssuer ?? null,
      friendlyName: req.friendlyName || null,
    });
    if ('refusal' in outcome) return refuse('key_limit', outcome.refusal);
    return outcome;
  }

  private async store(
    caller: Principal,
    deviceId: string,
    policy: EffectiveKeyPolicy,
    key: Pick<
      Credential,
      'id' | 'algorithm' | 'attestationLevel' | 'attestationIssuer' | 'friendlyName'
    > & { publicKeyJwk: object },
  ): Promise<ProvisioningOutcome | { refusal: string }> {
    const tenantId = caller.tenantId;
    const userId = caller.subject;
    const result = await this.db.$transaction(async (tx) => {
      // Serialize provisioning per device, then per user (always in this order: no deadlock),
      // so that concurrent requests cannot both pass the key limits.
      await tx.$queryRaw`SELECT 1 AS locked
        FROM pg_advisory_xact_lock(hashtext(${`prov:device:${tenantId}:${deviceId}`})) AS d,
             pg_advisory_xact_lock(hashtext(${`prov:user:${tenantId}:${userId}`})) AS u`;
      // One round trip for everything the limits need.
      const [facts] = await tx.$queryRaw<
        { taken: boolean; same_device: string[]; for_user: number; on_device: number }[]
      >`SELECT
          EXISTS (SELECT 1 FROM credentials WHERE id = ${key.id}) AS taken,
          ARRAY (SELECT id FROM credentials
                  WHERE tenant_id = ${tenantId}::uuid AND user_id = ${userId}
                    AND device_id = ${deviceId}::uuid AND status = 'active'
                  ORDER BY created_at, id) AS same_device,
          (SELECT count(*)::int FROM credentials
            WHERE tenant_id = ${tenantId}::uuid AND user_id = ${userId} AND status = 'active') AS for_user,
          (SELECT count(*)::int FROM credentials
            WHERE tenant_id = ${tenantId}::uuid AND device_id = ${deviceId}::uuid AND status = 'active') AS on_device`;
      if (!facts) throw new Error('no answer to the key-limit query');
      if (facts.taken)
        throw new DomainError(
          'ALREADY_EXISTS',
          'CREDENTIAL_EXISTS',
          'this public key is already registered; generate a new key',
        );
      const sameDevice = facts.same_device;
      const replaced = sameDevice.slice(
        0,
        Math.max(0, sameDevice.length - (policy.maxKeysPerUserDevice - 1)),
      );
      // The replaced keys are among the user's and the device's active keys.
      const forUser = facts.for_user - replaced.length;
      if (forUser + 1 > policy.maxKeysPerUser)
        return { refusal: `the user already has ${forUser} active keys` };
      const onDevice = facts.on_device - replaced.length;
      if (onDevice + 1 > policy.maxKeysPerDevice)
        return { refusal: `the device already holds ${onDevice} active keys` };

      const now = new Date();
      if (replaced.length) {
        await tx.credential.updateMany({
          where: { id: { in: replaced } },
          data: { status: 'revoked', statusReason: 'replaced', revokedAt: now },
        });
      }
      const credential = await tx.credential.create({
        data: {
          ...key,
          tenantId,
          userId,
          deviceId,
          createdAt: now,
          expiresAt: policy.keyLifetimeSeconds
            ? new Date(now.getTime() + policy.keyLifetimeSeconds * 1000)
            : null,
        },
      });
      const events = [
        ...replaced.map((credentialId) =>
          createEvent(CredentialRevoked, tenantId, {
            tenantId,
            userId,
            deviceId,
            credentialId,
            cause: 'replaced',
            actorId: userId,
          }),
        ),
        createEvent(CredentialProvisioned, tenantId, {
          tenantId,
          userId,
          deviceId,
          credentialId: credential.id,
          algorithm: key.algorithm as 'RS256' | 'ES256',
          attestationLevel: key.attestationLevel,
          ...(key.attestationIssuer ? { attestationIssuer: key.attestationIssuer } : {}),
          replacedCredentialIds: replaced,
          ...(credential.expiresAt ? { expiresAt: credential.expiresAt.toISOString() } : {}),
        }),
      ];
      await tx.outboxEvent.createMany({ data: events.map(outboxRecord) });
      return { credential, replacedCredentialIds: replaced };
    });
    if (!('refusal' in result)) this.relay.notify();
    return result;
  }

  /** Records the failure event (its own transaction) and throws the refusal's error. */
  private async refuse(
    caller: Principal,
    deviceId: string,
    stage: 'begin' | 'complete',
    reason: ProvisioningFailureReason,
    extra: { detail?: string; algorithm?: string },
  ): Promise<never> {
    const event = createEvent(CredentialProvisioningFailed, caller.tenantId, {
      tenantId: caller.tenantId,
      userId: caller.subject,
      deviceId,
      stage,
      reason,
      ...(extra.algorithm ? { algorithm: extra.algorithm } : {}),
      ...(extra.detail ? { detail: extra.detail.slice(0, 256) } : {}),
    });
    await this.db.outboxEvent.create({ data: outboxRecord(event) });
    this.relay.notify();
    throw refusalError(reason, extra.detail);
  }
}
