/** HTTPS JSON face of the audit store. */
import { Controller, Get, Param, Query } from '@nestjs/common';
import { AuditQueryService } from './audit-query.service';
import { toProtoRecord } from './records.grpc.controller';

@Controller('v1/tenants/:tenantId/audit-events')
export class RecordsHttpController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get()
  async list(
    @Param('tenantId') tenantId: string,
    @Query('eventType') eventType?: string,
    @Query('subject') subject?: string,
    @Query('pageSize') pageSize?: string,
    @Query('pageToken') pageToken?: string,
  ) {
    const page = await this.audit.query({
      tenantId,
      eventType,
      subject,
      pageSize: pageSize === undefined ? undefined : Number(pageSize),
      pageToken,
    });
    return { records: page.records.map(toProtoRecord), nextPageToken: page.nextPageToken };
  }
}
