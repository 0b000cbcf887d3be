/** gRPC: join tokens (tenant admin). */
import { Controller, UseGuards } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { registrationV1 } from '@latchkey/contracts';
import { AccessTokenGuard, RequireRoles } from '@latchkey/service-kit';
import { tenantAdmin } from '../access/tenant-admin';
import { toProtoJoinToken } from './join-token.view';
import { JoinTokens } from './join-tokens.service';

const SERVICE = 'RegistrationService';

@Controller()
@UseGuards(AccessTokenGuard)
@RequireRoles('admin')
export class JoinTokensGrpcController {
  constructor(private readonly tokens: JoinTokens) {}

  @GrpcMethod(SERVICE, 'CreateJoinToken')
  async createJoinToken(
    req: registrationV1.CreateJoinTokenRequest,
    metadata: Metadata,
  ): Promise<registrationV1.CreateJoinTokenResponse> {
    const principal = tenantAdmin(metadata, req.tenantId);
    const { joinToken, token } = await this.tokens.create(principal, req);
    return { joinToken: toProtoJoinToken(joinToken), token };
  }

  @GrpcMethod(SERVICE, 'ListJoinTokens')
  async listJoinTokens(
    req: registrationV1.ListJoinTokensRequest,
    metadata: Metadata,
  ): Promise<registrationV1.ListJoinTokensResponse> {
    tenantAdmin(metadata, req.tenantId);
    const page = await this.tokens.list(req);
    return { joinTokens: page.joinTokens.map(toProtoJoinToken), nextPageToken: page.nextPageToken };
  }

  @GrpcMethod(SERVICE, 'RevokeJoinToken')
  async revokeJoinToken(
    req: registrationV1.RevokeJoinTokenRequest,
    metadata: Metadata,
  ): Promise<registrationV1.RevokeJoinTokenResponse> {
    tenantAdmin(metadata, req.tenantId);
    return { joinToken: toProtoJoinToken(await this.tokens.revoke(req.tenantId, req.joinTokenId)) };
  }
}
