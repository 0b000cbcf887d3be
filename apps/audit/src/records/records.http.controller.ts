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
  toCheckpointLine,
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

  /**
   * NDJSON in chain order, written as read and pausing while the client is slow.
   * Without filters the export is a verifiable chain (records and their signed
   * checkpoints, tools/audit-verify --ndjson); with filters, only matching records.
   */
  @Get('audit-events/export')
  async export(
    @Req() req: Request,
    @Res() res: Response,
    @Param('tenantId') tenantId: string,
    @Query() q: Params,
  ): Promise<void> {
    const tenant = tenantFor(principalOf(req), tenantId);
    const filter = defined(filterFromQuery(q));
    const lines: AsyncGenerator<string> = Object.keys(filter).length
      ? (async function* (records) {
          for await (const r of records) yield toExportLine(r);
        })(this.audit.export(tenant, filter))
      : (async function* (items) {
          for await (const i of items)
            yield 'record' in i ? toExportLine(i.record) : toCheckpointLine(i.checkpoint);
        })(this.audit.exportChain(tenant));
    // Validate the filter (first read) before the 200 goes out, so errors stay problem+json.
    const first = await lines.next();
    res.status(200).type('application/x-ndjson');
    let closed = false;
    res.on('close', () => (closed = true));
    const write = async (line: string) => {
      if (!res.write(line)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    };
    if (!first.done) {
      await write(first.value);
      for await (const line of lines) {
        if (closed) break;
        await write(line);
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
