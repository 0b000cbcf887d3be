/** gRPC face of device registration (latchkey.registration.v1.RegistrationService). */
import { Controller } from '@nestjs/common';
import { registrationV1, toTimestamp } from '@latchkey/contracts';
import type { Device } from '../generated/prisma/client';
import { DeviceRegistry } from './device-registry.service';

const { AttestationLevel, DeviceStatus, JoinType } = registrationV1;

const JOIN_TYPE_FROM_PROTO: Partial<Record<registrationV1.JoinType, string>> = {
  [JoinType.JOIN_TYPE_REGISTERED]: 'registered',
  [JoinType.JOIN_TYPE_JOINED]: 'joined',
};

export function toProtoDevice(d: Device): registrationV1.Device {
  return {
    deviceId: d.id,
    tenantId: d.tenantId,
    displayName: d.displayName,
    osType: d.osType,
    osVersion: d.osVersion,
    joinType: d.joinType === 'joined' ? JoinType.JOIN_TYPE_JOINED : JoinType.JOIN_TYPE_REGISTERED,
    status:
      (
        {
          active: DeviceStatus.DEVICE_STATUS_ACTIVE,
          disabled: DeviceStatus.DEVICE_STATUS_DISABLED,
          deleted: DeviceStatus.DEVICE_STATUS_DELETED,
        } as Record<string, registrationV1.DeviceStatus>
      )[d.status] ?? DeviceStatus.DEVICE_STATUS_UNSPECIFIED,
    attestationLevel:
      (
        {
          none: AttestationLevel.ATTESTATION_LEVEL_NONE,
          software: AttestationLevel.ATTESTATION_LEVEL_SOFTWARE,
          tpm: AttestationLevel.ATTESTATION_LEVEL_TPM,
        } as Record<string, registrationV1.AttestationLevel>
      )[d.attestationLevel] ?? AttestationLevel.ATTESTATION_LEVEL_UNSPECIFIED,
    createTime: toTimestamp(d.createdAt),
    updateTime: toTimestamp(d.updatedAt),
  };
}

@Controller()
@registrationV1.RegistrationServiceControllerMethods()
export class DevicesGrpcController implements registrationV1.RegistrationServiceController {
  constructor(private readonly devices: DeviceRegistry) {}

  async registerDevice(
    req: registrationV1.RegisterDeviceRequest,
  ): Promise<registrationV1.RegisterDeviceResponse> {
    const device = await this.devices.register({
      ...req,
      joinType: JOIN_TYPE_FROM_PROTO[req.joinType],
    });
    return { device: toProtoDevice(device) };
  }

  async getDevice(req: registrationV1.GetDeviceRequest): Promise<registrationV1.GetDeviceResponse> {
    return { device: toProtoDevice(await this.devices.get(req.tenantId, req.deviceId)) };
  }
}
