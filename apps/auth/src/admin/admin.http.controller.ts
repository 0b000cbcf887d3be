/** HTTPS JSON face of administration, same semantics as gRPC. */
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import {
  AccessTokenGuard,
  assertTenantAccess,
  principalOf,
  RequireRoles,
} from '@latchkey/service-kit';
import { Directory } from '../directory/directory.service';
import { SigningKeyRing } from '../signing-keys/signing-key-ring';
import { toProtoTenant, toProtoUser } from './admin.mapping';

type Body_ = Record<string, unknown> | undefined;

function callerFor(req: object, tenantId: string) {
  const p = principalOf(req);
  assertTenantAccess(p, tenantId);
  return p;
}

@Controller('v1')
@UseGuards(AccessTokenGuard)
@RequireRoles('admin')
export class AdminHttpController {
  constructor(
    @Inject(Directory) private readonly directory: Directory,
    @Inject(SigningKeyRing) private readonly keys: SigningKeyRing,
  ) {}

  @Post('tenants')
  @HttpCode(201)
  @RequireRoles('operator')
  async createTenant(@Req() req: object, @Body() body: Body_) {
    return {
      tenant: toProtoTenant(await this.directory.createTenant(body ?? {}, principalOf(req))),
    };
  }

  @Get('tenants/:tenantId')
  async getTenant(@Req() req: object, @Param('tenantId') tenantId: string) {
    callerFor(req, tenantId);
    return { tenant: toProtoTenant(await this.directory.getTenant(tenantId)) };
  }

  @Post('tenants/:tenantId/users')
  @HttpCode(201)
  async createUser(@Req() req: object, @Param('tenantId') tenantId: string, @Body() body: Body_) {
    const actor = callerFor(req, tenantId);
    return { user: toProtoUser(await this.directory.createUser(tenantId, body, actor)) };
  }

  @Post('tenants/:tenantId/users/import')
  @HttpCode(201)
  async importUsers(@Req() req: object, @Param('tenantId') tenantId: string, @Body() body: Body_) {
    const actor = callerFor(req, tenantId);
    const users = await this.directory.importUsers(tenantId, body?.users, actor);
    return { users: users.map(toProtoUser) };
  }

  @Get('tenants/:tenantId/users')
  async listUsers(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Query('pageSize') pageSize?: string,
    @Query('pageToken') pageToken?: string,
  ) {
    callerFor(req, tenantId);
    const page = await this.directory.listUsers(
      tenantId,
      pageSize === undefined ? undefined : Number(pageSize),
      pageToken,
    );
    return { users: page.users.map(toProtoUser), nextPageToken: page.nextPageToken };
  }

  @Get('tenants/:tenantId/users/:userId')
  async getUser(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
  ) {
    callerFor(req, tenantId);
    return { user: toProtoUser(await this.directory.getUser(tenantId, userId)) };
  }

  @Post('tenants/:tenantId/users/:userId/disable')
  @HttpCode(200)
  async disableUser(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
  ) {
    const actor = callerFor(req, tenantId);
    return { user: toProtoUser(await this.directory.disableUser(tenantId, userId, actor)) };
  }

  @Post('tenants/:tenantId/users/:userId/enable')
  @HttpCode(200)
  async enableUser(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
  ) {
    const actor = callerFor(req, tenantId);
    return { user: toProtoUser(await this.directory.enableUser(tenantId, userId, actor)) };
  }

  @Delete('tenants/:tenantId/users/:userId')
  @HttpCode(204)
  async deleteUser(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
  ) {
    const actor = callerFor(req, tenantId);
    await this.directory.deleteUser(tenantId, userId, actor);
  }

  @Post('tenants/:tenantId/users/:userId/password')
  @HttpCode(204)
  async setPassword(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Body() body: Body_,
  ) {
    const actor = callerFor(req, tenantId);
    await this.directory.setPassword(tenantId, userId, body?.password, actor);
  }

  @Post('signing-keys/rotate')
  @HttpCode(200)
  @RequireRoles('operator')
  async rotate(@Req() req: object) {
    const r = await this.keys.rotate('operator', principalOf(req).subject);
    return { kid: r.kid, nextKid: r.nextKid, previousKid: r.previousKid ?? '' };
  }
}
