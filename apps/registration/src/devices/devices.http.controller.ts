/** HTTPS JSON face of device registration, same semantics as gRPC. */
import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { DeviceRegistry } from './device-registry.service';
import { toProtoDevice } from './devices.grpc.controller';

@Controller('v1')
export class DevicesHttpController {
  constructor(private readonly devices: DeviceRegistry) {}

  @Post('devices')
  @HttpCode(201)
  async register(@Body() body: unknown) {
    return { device: toProtoDevice(await this.devices.register(body)) };
  }

  @Get('tenants/:tenantId/devices/:deviceId')
  async get(@Param('tenantId') tenantId: string, @Param('deviceId') deviceId: string) {
    return { device: toProtoDevice(await this.devices.get(tenantId, deviceId)) };
  }
}
