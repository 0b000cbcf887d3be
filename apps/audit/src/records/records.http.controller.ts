/** HTTPS JSON face of the audit store: query, streaming NDJSON export, chain verification. */
import { once } from 'node:events';
import { Controller, Get, Param, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AccessTokenGuard, principalOf, RequireRoles } from '@latchkey/service-kit';
import { ChainVerifier } from '../verification/chain-verifier.service';
import { AuditQueryService } from './audit-query.service';
import {
  defined,
  filterFromQuery,
  tenantFor,
  toExportLine,
  toProtoRecord,
} from './audit-record.view';

type Params = Record<string, string | undefined>;

@Controller('v1/tenants/:tenantId')
@UseGuards(AccessTokenGuard)
@RequireRoles('admin', 'soc')
export class RecordsHttpController {
  constructor(
    private readonly audit: AuditQueryService,
    private readonly verifier: ChainVerifier,
  ) {}

  @Get('audit-events')
  async list(@Req() req: Request, @Param('tenantId') tenantId: string, @Query() q: Params) {
    const page = await this.audit.query({
      tenantId: tenantFor(principalOf(req), tenantId),
      filter: defined(filterFromQuery(q)),
      pageSize: q.pageSize === undefined ? undefined : Number(q.pageSize),
      pageToken: q.pageToken,
    });
    return { records: page.records.map(toProtoRecord), nextPageToken: page.nextPageToken };
  }

  /** NDJSON, one record per line in chain order; written as read, pausing while the client is slow. */
  @Get('audit-events/export')
  async export(
    @Req() req: Request,
    @Res() res: Response,
    @Param('tenantId') tenantId: string,
    @Query() q: Params,
  ): Promise<void> {
    const records = this.audit.export(
      tenantFor(principalOf(req), tenantId),
      defined(filterFromQuery(q)),
    );
    // Validate the filter (first read) before the 200 goes out, so errors stay problem+json.
    const first = await records.next();
    res.status(200).type('application/x-ndjson');
    let closed = false;
    res.on('close', () => (closed = true));
    if (!first.done) {
      if (!res.write(toExportLine(first.value))) await once(res, 'drain');
      for await (const r of records) {
        if (closed) break;
        if (!res.write(toExportLine(r)))
          await Promise.race([once(res, 'drain'), once(res, 'close')]);
      }
    }
    res.end();
  }

  @Get('audit-chain/verify')
  async verify(@Req() req: Request, @Param('tenantId') tenantId: string, @Query() q: Params) {
    const v = await this.verifier.verify(
      tenantFor(principalOf(req), tenantId),
      BigInt(/^\d{1,18}$/.test(q.fromSeq ?? '') ? q.fromSeq! : 0),
      BigInt(/^\d{1,18}$/.test(q.toSeq ?? '') ? q.toSeq! : 0),
    );
    return {
      ok: v.ok,
      firstInvalidSeq: v.firstInvalidSeq.toString(),
      reason: v.reason,
      recordsVerified: v.recordsVerified,
      checkpointsVerified: v.checkpointsVerified,
      fromSeq: v.fromSeq.toString(),
      toSeq: v.toSeq.toString(),
      headHash: v.headHash,
    };
  }
}
