/** gRPC face of the audit store (latchkey.audit.v1.AuditService); admin or SOC role, tenant from the token. */
import { Controller, UseGuards } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { auditV1 } from '@latchkey/contracts';
import { AccessTokenGuard, principalOf, RequireRoles } from '@latchkey/service-kit';
import { Observable } from 'rxjs';
import { ChainVerifier } from '../verification/chain-verifier.service';
import { AuditQueryService } from './audit-query.service';
import { defined, filterFromProto, tenantFor, toProtoRecord } from './audit-record.view';

@Controller()
@UseGuards(AccessTokenGuard)
@RequireRoles('admin', 'soc')
@auditV1.AuditServiceControllerMethods()
export class RecordsGrpcController implements auditV1.AuditServiceController {
  constructor(
    private readonly audit: AuditQueryService,
    private readonly verifier: ChainVerifier,
  ) {}

  async queryAuditEvents(
    req: auditV1.QueryAuditEventsRequest,
    metadata: Metadata,
  ): Promise<auditV1.QueryAuditEventsResponse> {
    const page = await this.audit.query({
      tenantId: tenantFor(principalOf(metadata), req.tenantId),
      filter: defined(filterFromProto(req.filter, req)),
      pageSize: req.pageSize,
      pageToken: req.pageToken || undefined,
    });
    return { records: page.records.map(toProtoRecord), nextPageToken: page.nextPageToken };
  }

  exportAuditEvents(
    req: auditV1.ExportAuditEventsRequest,
    metadata: Metadata,
  ): Observable<auditV1.ExportAuditEventsResponse> {
    const tenantId = tenantFor(principalOf(metadata), req.tenantId);
    const records = this.audit.export(tenantId, defined(filterFromProto(req.filter)));
    return new Observable((subscriber) => {
      let cancelled = false;
      void (async () => {
        try {
          for await (const r of records) {
            if (cancelled) break;
            subscriber.next({ record: toProtoRecord(r) });
          }
          subscriber.complete();
        } catch (err) {
          subscriber.error(err);
        }
      })();
      return () => {
        cancelled = true;
      };
    });
  }

  async verifyChain(
    req: auditV1.VerifyChainRequest,
    metadata: Metadata,
  ): Promise<auditV1.VerifyChainResponse> {
    const tenantId = tenantFor(principalOf(metadata), req.tenantId);
    const v = await this.verifier.verify(
      tenantId,
      BigInt(req.fromSeq || 0),
      BigInt(req.toSeq || 0),
    );
    return {
      ok: v.ok,
      firstInvalidSeq: v.firstInvalidSeq.toString(),
      reason: v.reason,
      recordsVerified: String(v.recordsVerified),
      checkpointsVerified: String(v.checkpointsVerified),
      fromSeq: v.fromSeq.toString(),
      toSeq: v.toSeq.toString(),
      headHash: v.headHash,
    };
  }
}
