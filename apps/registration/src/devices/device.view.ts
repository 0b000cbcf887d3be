/** Devices as the contracts show them (the same JSON over gRPC and HTTP). */
import { registrationV1, toTimestamp } from '@latchkey/contracts';
import type { Device } from '../generated/prisma/client';

const { AttestationLevel, DeviceStatus, JoinType } = registrationV1;

export const JOIN_TYPE_FROM_PROTO: Partial<Record<string, string>> = {
  [JoinType.JOIN_TYPE_REGISTERED]: 'registered',
  [JoinType.JOIN_TYPE_JOINED]: 'joined',
};

const STATUS: Record<string, registrationV1.DeviceStatus> = {
  active: DeviceStatus.DEVICE_STATUS_ACTIVE,
  disabled: DeviceStatus.DEVICE_STATUS_DISABLED,
  deleted: DeviceStatus.DEVICE_STATUS_DELETED,
};

const LEVEL: Record<string, registrationV1.AttestationLevel> = {
  none: AttestationLevel.ATTESTATION_LEVEL_NONE,
  software: AttestationLevel.ATTESTATION_LEVEL_SOFTWARE,
  tpm: AttestationLevel.ATTESTATION_LEVEL_TPM,
};

const invert = <T extends string>(m: Record<string, T>) =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k])) as Record<string, string>;
export const STATUS_FROM_PROTO = invert(STATUS);
export const LEVEL_FROM_PROTO = invert(LEVEL);

export function toProtoDevice(d: Device): registrationV1.Device {
  return {
    deviceId: d.id,
    tenantId: d.tenantId,
    displayName: d.displayName,
    osType: d.osType,
    osVersion: d.osVersion,
    joinType: d.joinType === 'joined' ? JoinType.JOIN_TYPE_JOINED : JoinType.JOIN_TYPE_REGISTERED,
    status: STATUS[d.status] ?? DeviceStatus.DEVICE_STATUS_UNSPECIFIED,
    attestationLevel: LEVEL[d.attestationLevel] ?? AttestationLevel.ATTESTATION_LEVEL_UNSPECIFIED,
    createTime: toTimestamp(d.createdAt),
    updateTime: toTimestamp(d.updatedAt),
    certificateSerial: d.certificateSerial ?? '',
    certificateExpireTime: d.certificateNotAfter ? toTimestamp(d.certificateNotAfter) : undefined,
    certificatePem: d.certificatePem ?? '',
    deviceKeyThumbprint: d.deviceKeyThumbprint ?? '',
    transportKeyThumbprint: d.transportKeyThumbprint ?? '',
    lastSeenTime: d.lastSeenAt ? toTimestamp(d.lastSeenAt) : undefined,
    transportPublicKey: d.transportPublicKey,
  };
}
