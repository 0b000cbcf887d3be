/** HTTP: join tokens (tenant admin), same semantics as gRPC. */
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { AccessTokenGuard, jsonObjectBody, RequireRoles } from '@latchkey/service-kit';
import type { Request } from 'express';
import { tenantAdmin } from '../access/tenant-admin';
import { toProtoJoinToken } from './join-token.view';
import { JoinTokens } from './join-tokens.service';

@Controller('v1/tenants/:tenantId/join-tokens')
@UseGuards(AccessTokenGuard)
@RequireRoles('admin')
export class JoinTokensHttpController {
  constructor(private readonly tokens: JoinTokens) {}

  @Post()
  @HttpCode(201)
  async create(
    @Param('tenantId') tenantId: string,
    @Body() body: Record<string, unknown>,
    @Req() req: Request,
  ) {
    const principal = tenantAdmin(req, tenantId);
    const { joinToken, token } = await this.tokens.create(principal, {
      maxUses: 0,
      ttlSeconds: 0,
      ...jsonObjectBody(req, body),
      tenantId,
    });
    return { joinToken: toProtoJoinToken(joinToken), token };
  }

  @Get()
  async list(
    @Param('tenantId') tenantId: string,
    @Query('pageSize') pageSize: string | undefined,
    @Query('pageToken') pageToken: string | undefined,
    @Req() req: Request,
  ) {
    tenantAdmin(req, tenantId);
    const page = await this.tokens.list({
      tenantId,
      pageSize: pageSize ? Number(pageSize) : 0,
      pageToken: pageToken ?? '',
    });
    return { joinTokens: page.joinTokens.map(toProtoJoinToken), nextPageToken: page.nextPageToken };
  }

  @Delete(':joinTokenId')
  async revoke(
    @Param('tenantId') tenantId: string,
    @Param('joinTokenId') joinTokenId: string,
    @Req() req: Request,
  ) {
    tenantAdmin(req, tenantId);
    return { joinToken: toProtoJoinToken(await this.tokens.revoke(tenantId, joinTokenId)) };
  }
}
