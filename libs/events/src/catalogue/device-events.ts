/**
 * Events of the device registration service, topic latchkey.device.v1. None
 * carries a key, a token or a CSR: devices are named by id, keys by thumbprint,
 * join tokens by id.
 */
import { z } from 'zod';
import type { EventDefinition } from './catalogue';
import { Topics } from './topics';

const source = '/latchkey/registration';
const tenantId = z.string().uuid();
const deviceId = z.string().uuid();
/** Who acted: a user id (admin or self-service), `join-token:<id>`, or `device:<id>`. */
const actorId = z.string().min(1).max(128).optional();
const reason = z.string().max(256).optional();
const thumbprint = z.string().min(1).max(128);
const serial = z.string().regex(/^[0-9a-f]{2,40}$/);

/** Why a registration was refused (fixed vocabulary, for SOC rules; never the secret itself). */
export const DEVICE_REGISTRATION_FAILURE_REASONS = [
  'invalid_request',
  'malformed_csr',
  'csr_signature_invalid',
  'key_not_allowed',
  'malformed_transport_key',
  'join_token_invalid',
  'join_token_expired',
  'join_token_exhausted',
  'join_token_revoked',
  'join_token_tenant_mismatch',
  'device_name_not_allowed',
  'access_token_invalid',
  'permission_denied',
  'attestation_invalid',
  'attestation_required',
] as const;

function device<S extends z.ZodTypeAny>(def: Omit<EventDefinition<S>, 'topic' | 'source'>) {
  return { ...def, topic: Topics.device, source } as EventDefinition<S>;
}

export const DeviceRegistered = device({
  type: 'dev.latchkey.device.registered.v1',
  schema: z
    .object({
      tenantId,
      deviceId,
      displayName: z.string().min(1).max(256),
      osType: z.string().max(64),
      osVersion: z.string().max(64),
      joinType: z.enum(['registered', 'joined']),
      attestationLevel: z.enum(['none', 'software', 'tpm']),
      /** e.g. EC-P-256, RSA-2048. */
      keyKind: z.string().max(32).optional(),
      deviceKeyThumbprint: thumbprint.optional(),
      certificateSerial: serial.optional(),
      /** How enrollment was authorized. */
      enrollment: z.enum(['join_token', 'access_token']).optional(),
      joinTokenId: z.string().uuid().optional(),
      actorId,
    })
    .strict(),
  subject: (d) => `devices/${d.deviceId}`,
});

export const DeviceRegistrationFailed = device({
  type: 'dev.latchkey.device.registration_failed.v1',
  schema: z
    .object({
      tenantId,
      reason: z.enum(DEVICE_REGISTRATION_FAILURE_REASONS),
      /** The join token presented, when it is a known token of this tenant. */
      joinTokenId: z.string().uuid().optional(),
      displayName: z.string().max(256).optional(),
      osType: z.string().max(64).optional(),
      actorId,
    })
    .strict(),
  subject: (d) => (d.joinTokenId ? `join-tokens/${d.joinTokenId}` : `tenants/${d.tenantId}`),
});

const deviceChange = z.object({ tenantId, deviceId, actorId, reason }).strict();

export const DeviceDisabled = device({
  type: 'dev.latchkey.device.disabled.v1',
  schema: deviceChange,
  subject: (d) => `devices/${d.deviceId}`,
});

export const DeviceEnabled = device({
  type: 'dev.latchkey.device.enabled.v1',
  schema: deviceChange,
  subject: (d) => `devices/${d.deviceId}`,
});

export const DeviceDeleted = device({
  type: 'dev.latchkey.device.deleted.v1',
  schema: z
    .object({ tenantId, deviceId, actorId, reason, revokedSerials: z.array(serial).max(64) })
    .strict(),
  subject: (d) => `devices/${d.deviceId}`,
});

export const DeviceCertificateRenewed = device({
  type: 'dev.latchkey.device.certificate_renewed.v1',
  schema: z
    .object({
      tenantId,
      deviceId,
      actorId,
      previousSerial: serial,
      certificateSerial: serial,
      notAfter: z.string().datetime(),
      deviceKeyThumbprint: thumbprint,
      /** True when the device moved to a new device key. */
      keyChanged: z.boolean(),
    })
    .strict(),
  subject: (d) => `devices/${d.deviceId}`,
});

/** Every device event, for the catalogue. */
export const DEVICE_EVENTS: readonly EventDefinition[] = [
  DeviceRegistered,
  DeviceRegistrationFailed,
  DeviceDisabled,
  DeviceEnabled,
  DeviceDeleted,
  DeviceCertificateRenewed,
] as unknown as EventDefinition[];
