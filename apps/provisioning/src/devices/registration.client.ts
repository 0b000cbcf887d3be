/**
 * registration's device lookups over gRPC (GetDevice, GetTenantCaCertificate),
 * each with a deadline. Anything but an answer (registration down, slow,
 * erroring) is UNAVAILABLE: provisioning fails closed.
 */
import { credentials, type Client, loadPackageDefinition, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { GRPC_PACKAGES, PROTO_LOADER_OPTIONS, protoFile } from '@latchkey/contracts';
import { DomainError } from '@latchkey/service-kit';

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

type Unary = (
  req: object,
  options: { deadline: number },
  cb: (err: (Error & { code?: number }) | null, res?: Record<string, unknown>) => void,
) => void;

@Injectable()
export class RegistrationClient implements OnModuleDestroy {
  private readonly client: Client & Record<string, Unary | undefined>;

  constructor(
    address: string,
    private readonly timeoutMs: number,
  ) {
    const info = GRPC_PACKAGES.registration;
    let pkg = loadPackageDefinition(
      loadSync(protoFile('registration'), PROTO_LOADER_OPTIONS),
    ) as Record<string, unknown>;
    for (const part of info.package.split('.')) pkg = pkg[part] as Record<string, unknown>;
    const Ctor = pkg[info.service] as new (
      address: string,
      creds: ReturnType<typeof credentials.createInsecure>,
    ) => Client & Record<string, Unary | undefined>;
    this.client = new Ctor(address, credentials.createInsecure());
  }

  /** The answer, null for NOT_FOUND, UNAVAILABLE for everything else. */
  private call(method: string, req: object): Promise<Record<string, unknown> | null> {
    const unavailable = () =>
      DomainError.unavailable(
        'REGISTRATION_UNAVAILABLE',
        'cannot check the device with the registration service; retry later',
      );
    const fn = this.client[method];
    if (typeof fn !== 'function') return Promise.reject(unavailable());
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (!err) return resolve(res ?? null);
        if (err.code === status.NOT_FOUND) return resolve(null);
        reject(unavailable());
      });
    });
  }

  /** The device as registration knows it in `tenantId`; null when it is not there. */
  async getDevice(tenantId: string, deviceId: string): Promise<DeviceFacts | null> {
    const res = await this.call('GetDevice', { tenantId, deviceId });
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
    const res = await this.call('GetTenantCaCertificate', { tenantId });
    const pem = res?.certificatePem;
    return typeof pem === 'string' && pem ? pem : null;
  }

  onModuleDestroy(): void {
    this.client.close();
  }
}
