/** HTTPS JSON face of devices, same semantics as gRPC. */
import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { AccessTokenGuard, RequireRoles } from '@latchkey/service-kit';
import type { Request } from 'express';
import { tenantAdmin } from '../access/tenant-admin';
import { DeviceRegistry, type IssuedDevice } from './device-registry.service';
import { toProtoDevice } from './device.view';

const issuedView = (issued: IssuedDevice) => ({
  device: toProtoDevice(issued.device),
  certificatePem: issued.certificatePem,
  certificateChainPem: issued.chainPem,
});

/**
 * `authorization: DeviceAssertion <compact JWS>`: a device authenticating as
 * itself (a GET has no body to carry `deviceAssertion` in, as the device's
 * POSTs do). The scheme is case-insensitive (RFC 9110).
 */
export function deviceAssertionOf(authorization: string | undefined): string | undefined {
  return /^DeviceAssertion +(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
}

@Controller('v1')
export class DevicesHttpController {
  constructor(private readonly devices: DeviceRegistry) {}

  @Post('devices')
  @HttpCode(201)
  async register(@Body() body: unknown, @Headers('authorization') authorization?: string) {
    const bearer = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(authorization?.trim() ?? '')?.[1];
    return issuedView(await this.devices.register(body, bearer));
  }

  /**
   * The calling device's own record, authenticated by its device assertion (aud
   * DEVICE_ASSERTION_AUDIENCE, a jti used once); an active or disabled device.
   */
  @Get('devices/self')
  async self(@Headers('authorization') authorization?: string) {
    return { device: toProtoDevice(await this.devices.self(deviceAssertionOf(authorization))) };
  }

  @Get('tenants/:tenantId/devices/:deviceId')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async get(
    @Param('tenantId') tenantId: string,
    @Param('deviceId') deviceId: string,
    @Req() req: Request,
  ) {
    tenantAdmin(req, tenantId);
    return { device: toProtoDevice(await this.devices.get(tenantId, deviceId)) };
  }

  @Get('tenants/:tenantId/devices')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async list(
    @Param('tenantId') tenantId: string,
    @Query() query: Record<string, string | undefined>,
    @Req() req: Request,
  ) {
    tenantAdmin(req, tenantId);
    const page = await this.devices.list({
      tenantId,
      pageSize: query.pageSize ? Number(query.pageSize) : 0,
      pageToken: query.pageToken ?? '',
      status: query.status,
      osType: query.osType,
      attestationLevel: query.attestationLevel,
      displayNamePrefix: query.displayNamePrefix,
    });
    return { devices: page.devices.map(toProtoDevice), nextPageToken: page.nextPageToken };
  }

  @Post('tenants/:tenantId/devices/:deviceId/disable')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async disable(
    @Param('tenantId') tenantId: string,
    @Param('deviceId') deviceId: string,
    @Body() body: { reason?: string } | undefined,
    @Req() req: Request,
  ) {
    const principal = tenantAdmin(req, tenantId);
    const device = await this.devices.disable(principal, { ...body, tenantId, deviceId });
    return { device: toProtoDevice(device) };
  }

  @Post('tenants/:tenantId/devices/:deviceId/enable')
  @HttpCode(200)
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async enable(
    @Param('tenantId') tenantId: string,
    @Param('deviceId') deviceId: string,
    @Body() body: { reason?: string } | undefined,
    @Req() req: Request,
  ) {
    const principal = tenantAdmin(req, tenantId);
    const device = await this.devices.enable(principal, { ...body, tenantId, deviceId });
    return { device: toProtoDevice(device) };
  }

  @Delete('tenants/:tenantId/devices/:deviceId')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async remove(
    @Param('tenantId') tenantId: string,
    @Param('deviceId') deviceId: string,
    @Query('reason') reason: string | undefined,
    @Req() req: Request,
  ) {
    const principal = tenantAdmin(req, tenantId);
    const device = await this.devices.delete(principal, { tenantId, deviceId, reason });
    return { device: toProtoDevice(device) };
  }

  @Post('tenants/:tenantId/devices/:deviceId/certificate/renew')
  @HttpCode(200)
  async renew(
    @Param('tenantId') tenantId: string,
    @Param('deviceId') deviceId: string,
    @Body() body: Record<string, unknown>,
  ) {
    return issuedView(await this.devices.renew({ ...body, tenantId, deviceId }));
  }
}
