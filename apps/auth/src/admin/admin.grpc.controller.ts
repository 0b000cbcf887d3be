/** gRPC face of administration (latchkey.auth.v1.AdminService); guarded by access tokens. */
import { Controller, Inject, UseGuards } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import * as adminV1 from '@latchkey/contracts/gen/latchkey/auth/v1/admin';
import {
  AccessTokenGuard,
  assertTenantAccess,
  principalOf,
  RequireRoles,
} from '@latchkey/service-kit';
import { Directory } from '../directory/directory.service';
import { SigningKeyRing } from '../signing-keys/signing-key-ring';
import { toProtoTenant, toProtoUser } from './admin.mapping';

/** The verified caller, after checking it may act on `tenantId`. */
function callerFor(md: Metadata, tenantId: string) {
  const p = principalOf(md);
  assertTenantAccess(p, tenantId);
  return p;
}

@Controller()
@UseGuards(AccessTokenGuard)
@RequireRoles('admin')
@adminV1.AdminServiceControllerMethods()
export class AdminGrpcController implements adminV1.AdminServiceController {
  constructor(
    @Inject(Directory) private readonly directory: Directory,
    @Inject(SigningKeyRing) private readonly keys: SigningKeyRing,
  ) {}

  @RequireRoles('operator')
  async createTenant(req: adminV1.CreateTenantRequest, md: Metadata) {
    const t = await this.directory.createTenant(req, principalOf(md));
    return { tenant: toProtoTenant(t) };
  }

  async getTenant(req: adminV1.GetTenantRequest, md: Metadata) {
    callerFor(md, req.tenantId);
    return { tenant: toProtoTenant(await this.directory.getTenant(req.tenantId)) };
  }

  async createUser(req: adminV1.CreateUserRequest, md: Metadata) {
    const actor = callerFor(md, req.tenantId);
    return { user: toProtoUser(await this.directory.createUser(req.tenantId, req.user, actor)) };
  }

  async importUsers(req: adminV1.ImportUsersRequest, md: Metadata) {
    const actor = callerFor(md, req.tenantId);
    const users = await this.directory.importUsers(req.tenantId, req.users, actor);
    return { users: users.map(toProtoUser) };
  }

  async getUser(req: adminV1.GetUserRequest, md: Metadata) {
    callerFor(md, req.tenantId);
    return { user: toProtoUser(await this.directory.getUser(req.tenantId, req.userId)) };
  }

  async listUsers(req: adminV1.ListUsersRequest, md: Metadata) {
    callerFor(md, req.tenantId);
    const page = await this.directory.listUsers(req.tenantId, req.pageSize, req.pageToken);
    return { users: page.users.map(toProtoUser), nextPageToken: page.nextPageToken };
  }

  async disableUser(req: adminV1.DisableUserRequest, md: Metadata) {
    const actor = callerFor(md, req.tenantId);
    return { user: toProtoUser(await this.directory.disableUser(req.tenantId, req.userId, actor)) };
  }

  async enableUser(req: adminV1.EnableUserRequest, md: Metadata) {
    const actor = callerFor(md, req.tenantId);
    return { user: toProtoUser(await this.directory.enableUser(req.tenantId, req.userId, actor)) };
  }

  async deleteUser(req: adminV1.DeleteUserRequest, md: Metadata) {
    const actor = callerFor(md, req.tenantId);
    await this.directory.deleteUser(req.tenantId, req.userId, actor);
    return {};
  }

  async setUserPassword(req: adminV1.SetUserPasswordRequest, md: Metadata) {
    const actor = callerFor(md, req.tenantId);
    await this.directory.setPassword(req.tenantId, req.userId, req.password, actor);
    return {};
  }

  @RequireRoles('operator')
  async rotateSigningKey(_req: adminV1.RotateSigningKeyRequest, md: Metadata) {
    const r = await this.keys.rotate('operator', principalOf(md).subject);
    return { kid: r.kid, nextKid: r.nextKid, previousKid: r.previousKid ?? '' };
  }
}
