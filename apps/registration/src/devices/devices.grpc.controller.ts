/** gRPC face of devices (latchkey.registration.v1.RegistrationService). */
import { Controller, UseGuards } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { registrationV1 } from '@latchkey/contracts';
import {
  AccessTokenGuard,
  InternalCallers,
  InternalCallGuard,
  RequireRoles,
} from '@latchkey/service-kit';
import { tenantAdmin } from '../access/tenant-admin';
import { DeviceRegistry } from './device-registry.service';
import {
  JOIN_TYPE_FROM_PROTO,
  LEVEL_FROM_PROTO,
  STATUS_FROM_PROTO,
  toProtoDevice,
} from './device.view';

const SERVICE = 'RegistrationService';

function bearerOf(metadata: Metadata | undefined): string | undefined {
  const value = metadata?.get('authorization')[0];
  const m = typeof value === 'string' ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(value.trim()) : null;
  return m?.[1];
}

@Controller()
export class DevicesGrpcController {
  constructor(private readonly devices: DeviceRegistry) {}

  @GrpcMethod(SERVICE, 'RegisterDevice')
  async registerDevice(
    req: registrationV1.RegisterDeviceRequest,
    metadata: Metadata,
  ): Promise<registrationV1.RegisterDeviceResponse> {
    const issued = await this.devices.register(
      { ...req, joinType: JOIN_TYPE_FROM_PROTO[req.joinType] },
      bearerOf(metadata),
    );
    return {
      device: toProtoDevice(issued.device),
      certificatePem: issued.certificatePem,
      certificateChainPem: issued.chainPem,
    };
  }

  /** Internal: auth's key sign-in and provisioning look devices up (not routed over HTTP). */
  @GrpcMethod(SERVICE, 'GetDevice')
  @UseGuards(InternalCallGuard)
  @InternalCallers('auth', 'provisioning')
  async getDevice(req: registrationV1.GetDeviceRequest): Promise<registrationV1.GetDeviceResponse> {
    return { device: toProtoDevice(await this.devices.get(req.tenantId, req.deviceId)) };
  }

  /** The calling device's own record, authorized by the device assertion in the request. */
  @GrpcMethod(SERVICE, 'GetSelfDevice')
  async getSelfDevice(
    req: registrationV1.GetSelfDeviceRequest,
  ): Promise<registrationV1.GetSelfDeviceResponse> {
    return { device: toProtoDevice(await this.devices.self(req.deviceAssertion)) };
  }

  @GrpcMethod(SERVICE, 'ListDevices')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async listDevices(
    req: registrationV1.ListDevicesRequest,
    metadata: Metadata,
  ): Promise<registrationV1.ListDevicesResponse> {
    tenantAdmin(metadata, req.tenantId);
    const page = await this.devices.list({
      tenantId: req.tenantId,
      pageSize: req.pageSize,
      pageToken: req.pageToken,
      status: STATUS_FROM_PROTO[req.status],
      osType: req.osType || undefined,
      attestationLevel: LEVEL_FROM_PROTO[req.attestationLevel],
      displayNamePrefix: req.displayNamePrefix || undefined,
    });
    return { devices: page.devices.map(toProtoDevice), nextPageToken: page.nextPageToken };
  }

  @GrpcMethod(SERVICE, 'DisableDevice')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async disableDevice(
    req: registrationV1.DisableDeviceRequest,
    metadata: Metadata,
  ): Promise<registrationV1.DisableDeviceResponse> {
    const principal = tenantAdmin(metadata, req.tenantId);
    return { device: toProtoDevice(await this.devices.disable(principal, req)) };
  }

  @GrpcMethod(SERVICE, 'EnableDevice')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async enableDevice(
    req: registrationV1.EnableDeviceRequest,
    metadata: Metadata,
  ): Promise<registrationV1.EnableDeviceResponse> {
    const principal = tenantAdmin(metadata, req.tenantId);
    return { device: toProtoDevice(await this.devices.enable(principal, req)) };
  }

  @GrpcMethod(SERVICE, 'DeleteDevice')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async deleteDevice(
    req: registrationV1.DeleteDeviceRequest,
    metadata: Metadata,
  ): Promise<registrationV1.DeleteDeviceResponse> {
    const principal = tenantAdmin(metadata, req.tenantId);
    return { device: toProtoDevice(await this.devices.delete(principal, req)) };
  }

  @GrpcMethod(SERVICE, 'RenewDeviceCertificate')
  async renewDeviceCertificate(
    req: registrationV1.RenewDeviceCertificateRequest,
  ): Promise<registrationV1.RenewDeviceCertificateResponse> {
    const issued = await this.devices.renew(req);
    return {
      device: toProtoDevice(issued.device),
      certificatePem: issued.certificatePem,
      certificateChainPem: issued.chainPem,
    };
  }
}
