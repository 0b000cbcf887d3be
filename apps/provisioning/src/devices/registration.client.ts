/**
 * registration's device lookups over gRPC (GetDevice, GetTenantCaCertificate),
 * each with a deadline. Anything but an answer (registration down, slow,
 * erroring) is UNAVAILABLE: provisioning fails closed.
 */
import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type InternalCallSigner, InternalGrpcClient } from '@latchkey/service-kit';

export type DeviceStatus = 'active' | 'disabled' | 'deleted';

export interface DeviceFacts {
  deviceId: string;
  tenantId: string;
  status: DeviceStatus;
  /** The device's current certificate (PEM); empty when registration has none. */
  certificatePem: string;
}

const STATUS: Record<string, DeviceStatus> = {
  DEVICE_STATUS_ACTIVE: 'active',
  DEVICE_STATUS_DISABLED: 'disabled',
  DEVICE_STATUS_DELETED: 'deleted',
};

@Injectable()
export class RegistrationClient implements OnModuleDestroy {
  private readonly client: InternalGrpcClient;

  constructor(address: string, timeoutMs: number, signer: InternalCallSigner) {
    this.client = new InternalGrpcClient('registration', {
      address,
      timeoutMs,
      signer,
      unavailableReason: 'REGISTRATION_UNAVAILABLE',
      unavailableMessage: 'cannot check the device with the registration service; retry later',
    });
  }

  /** The device as registration knows it in `tenantId`; null when it is not there. */
  async getDevice(tenantId: string, deviceId: string): Promise<DeviceFacts | null> {
    const res = await this.client.call('GetDevice', { tenantId, deviceId });
    const d = res?.device as Record<string, unknown> | null | undefined;
    if (!d) return null;
    return {
      deviceId: String(d.deviceId),
      tenantId: String(d.tenantId),
      status: STATUS[String(d.status)] ?? 'deleted',
      certificatePem: typeof d.certificatePem === 'string' ? d.certificatePem : '',
    };
  }

  /** The tenant's device CA certificate (PEM); null for an unknown tenant. */
  async tenantCaCertificate(tenantId: string): Promise<string | null> {
    const res = await this.client.call('GetTenantCaCertificate', { tenantId });
    const pem = res?.certificatePem;
    return typeof pem === 'string' && pem ? pem : null;
  }

  onModuleDestroy(): void {
    this.client.close();
  }
}
