/**
 * registration's GetDevice over gRPC, with a deadline. Anything but an answer
 * (registration down, slow, erroring) is UNAVAILABLE: provisioning fails closed.
 */
import { credentials, type Client, loadPackageDefinition, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import {
  GRPC_PACKAGES,
  PROTO_LOADER_OPTIONS,
  protoFile,
  registrationV1,
} from '@latchkey/contracts';
import { DomainError } from '@latchkey/service-kit';

export type DeviceStatus = 'active' | 'disabled' | 'deleted';

export interface DeviceFacts {
  deviceId: string;
  tenantId: string;
  status: DeviceStatus;
}

const STATUS: Record<string, DeviceStatus> = {
  [registrationV1.DeviceStatus.DEVICE_STATUS_ACTIVE]: 'active',
  [registrationV1.DeviceStatus.DEVICE_STATUS_DISABLED]: 'disabled',
  [registrationV1.DeviceStatus.DEVICE_STATUS_DELETED]: 'deleted',
};

type GetDevice = (
  req: registrationV1.GetDeviceRequest,
  options: { deadline: number },
  cb: (err: (Error & { code?: number }) | null, res?: registrationV1.GetDeviceResponse) => void,
) => void;

@Injectable()
export class RegistrationClient implements OnModuleDestroy {
  private readonly client: Client & { GetDevice: GetDevice };

  constructor(
    private readonly address: string,
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
    ) => Client & { GetDevice: GetDevice };
    this.client = new Ctor(address, credentials.createInsecure());
  }

  /** The device as registration knows it in `tenantId`; null when it is not there. */
  getDevice(tenantId: string, deviceId: string): Promise<DeviceFacts | null> {
    return new Promise((resolve, reject) => {
      this.client.GetDevice(
        { tenantId, deviceId },
        { deadline: Date.now() + this.timeoutMs },
        (err, res) => {
          if (err) {
            if (err.code === status.NOT_FOUND) return resolve(null);
            return reject(
              DomainError.unavailable(
                'REGISTRATION_UNAVAILABLE',
                'cannot check the device with the registration service; retry later',
              ),
            );
          }
          const d = res?.device;
          if (!d) return resolve(null);
          resolve({
            deviceId: d.deviceId,
            tenantId: d.tenantId,
            status: STATUS[d.status] ?? 'deleted',
          });
        },
      );
    });
  }

  onModuleDestroy(): void {
    this.client.close();
  }
}
