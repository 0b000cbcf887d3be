/** A tenant admin sets the tenant's audit retention period. */
import { Body, Controller, Get, Param, Put, Req, UseGuards } from '@nestjs/common';
import type { Request } from 'express';
import { AccessTokenGuard, principalOf, RequireRoles } from '@latchkey/service-kit';
import { tenantFor } from '../records/audit-record.view';
import { RetentionService } from './retention.service';

@Controller('v1/tenants/:tenantId/audit-retention')
@UseGuards(AccessTokenGuard)
@RequireRoles('admin')
export class RetentionHttpController {
  constructor(private readonly retention: RetentionService) {}

  @Get()
  async get(@Req() req: Request, @Param('tenantId') tenantId: string) {
    const p = await this.retention.getPolicy(tenantFor(principalOf(req), tenantId));
    return { tenantId: p.tenantId, retentionDays: p.retentionDays };
  }

  @Put()
  async put(
    @Req() req: Request,
    @Param('tenantId') tenantId: string,
    @Body() body: { retentionDays?: unknown },
  ) {
    const p = await this.retention.setPolicy({
      tenantId: tenantFor(principalOf(req), tenantId),
      retentionDays: body?.retentionDays as number,
    });
    return { tenantId: p.tenantId, retentionDays: p.retentionDays };
  }
}
