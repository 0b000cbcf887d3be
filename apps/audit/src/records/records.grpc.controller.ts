/** gRPC face of the audit store (latchkey.audit.v1.AuditService). */
import { Controller } from '@nestjs/common';
import { auditV1, toTimestamp } from '@latchkey/contracts';
import type { AuditRecord } from '../generated/prisma/client';
import { AuditQueryService } from './audit-query.service';

export function toProtoRecord(r: AuditRecord): auditV1.AuditRecord {
  return {
    eventId: r.eventId,
    tenantId: r.tenantId,
    eventType: r.eventType,
    source: r.source,
    subject: r.subject,
    time: toTimestamp(r.time),
    traceId: r.traceId ?? '',
    seq: r.seq.toString(),
    dataJson: JSON.stringify(r.data),
    recordJson: JSON.stringify(r.record),
  };
}

@Controller()
@auditV1.AuditServiceControllerMethods()
export class RecordsGrpcController implements auditV1.AuditServiceController {
  constructor(private readonly audit: AuditQueryService) {}

  async queryAuditEvents(
    req: auditV1.QueryAuditEventsRequest,
  ): Promise<auditV1.QueryAuditEventsResponse> {
    const page = await this.audit.query({
      tenantId: req.tenantId,
      eventType: req.eventType || undefined,
      subject: req.subject || undefined,
      pageSize: req.pageSize,
      pageToken: req.pageToken || undefined,
    });
    return { records: page.records.map(toProtoRecord), nextPageToken: page.nextPageToken };
  }
}
