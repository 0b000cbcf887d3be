/** Reads one tenant's audit records: filters, cursor pagination in chain order, streaming export. */
import { Inject, Injectable } from '@nestjs/common';
import { DomainError, keyCodecs, keyset, parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';
import {
  type AuditCheckpoint,
  type AuditRecord,
  type Prisma,
  PrismaClient,
} from '../generated/prisma/client';

const text = (max: number) => z.string().min(1).max(max).optional();

export const auditFilterSchema = z
  .object({
    eventType: text(256),
    subject: text(512),
    startTime: z.date().optional(),
    endTime: z.date().optional(),
    classUid: z.number().int().min(0).max(999_999).optional(),
    activityId: z.number().int().min(0).max(255).optional(),
    outcome: z.enum(['success', 'failure']).optional(),
    user: text(256),
    deviceId: text(128),
    credentialId: text(128),
    reason: text(64),
  })
  .strict();

export type AuditFilter = z.infer<typeof auditFilterSchema>;

const pageSchema = z.object({
  tenantId: z.string().min(1).max(128),
  filter: auditFilterSchema,
  pageSize: z.number().int().min(0).max(500).optional(),
  pageToken: z.string().max(64).optional(),
});

export type AuditPageQuery = z.input<typeof pageSchema>;

const EXPORT_CHUNK = 500;

/** Query pages in chain order: by seq, unique in a tenant. */
const recordPages = keyset({ sortKey: 'seq', sort: keyCodecs.bigint, direction: 'asc' });

/** The tenant's records that `f` selects. */
export function whereOf(tenantId: string, f: AuditFilter): Prisma.AuditRecordWhereInput {
  return {
    tenantId,
    ...(f.eventType ? { eventType: f.eventType } : {}),
    ...(f.subject ? { subject: f.subject } : {}),
    ...(f.startTime || f.endTime
      ? {
          time: {
            ...(f.startTime ? { gte: f.startTime } : {}),
            ...(f.endTime ? { lt: f.endTime } : {}),
          },
        }
      : {}),
    ...(f.classUid ? { classUid: f.classUid } : {}),
    ...(f.activityId ? { activityId: f.activityId } : {}),
    ...(f.outcome ? { statusId: f.outcome === 'success' ? 1 : 2 } : {}),
    ...(f.user ? { userUid: f.user } : {}),
    ...(f.deviceId ? { deviceUid: f.deviceId } : {}),
    ...(f.credentialId ? { credentialUid: f.credentialId } : {}),
    ...(f.reason ? { reason: f.reason } : {}),
  };
}

@Injectable()
export class AuditQueryService {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  async query(input: AuditPageQuery): Promise<{ records: AuditRecord[]; nextPageToken: string }> {
    const q = parseRequest(pageSchema, input, 'INVALID_AUDIT_QUERY');
    if (q.filter.startTime && q.filter.endTime && q.filter.startTime >= q.filter.endTime)
      throw DomainError.invalidArgument('INVALID_AUDIT_QUERY', 'startTime must be before endTime');
    const page = await recordPages.page(
      { pageSize: q.pageSize || 50, pageToken: q.pageToken },
      ({ where, orderBy, take }) =>
        this.db.auditRecord.findMany({
          where: { ...whereOf(q.tenantId, q.filter), ...where },
          orderBy,
          take,
        }),
    );
    return { records: page.items, nextPageToken: page.nextPageToken };
  }

  /**
   * Every matching record in chain order, read in chunks by seq: memory stays
   * bounded whatever the size of the result, and the consumer's pace (back-pressure)
   * decides when the next chunk is read.
   */
  async *export(tenantId: string, filterInput: unknown): AsyncGenerator<AuditRecord> {
    const filter = parseRequest(auditFilterSchema, filterInput, 'INVALID_AUDIT_QUERY');
    let after = 0n;
    for (;;) {
      const rows = await this.db.auditRecord.findMany({
        where: { ...whereOf(tenantId, filter), seq: { gt: after } },
        orderBy: { seq: 'asc' },
        take: EXPORT_CHUNK,
      });
      for (const r of rows) yield r;
      if (rows.length < EXPORT_CHUNK) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * An unfiltered export is a verifiable chain: the records in chain order with each
   * signed checkpoint right after the record it signs, preceded by the checkpoint
   * that anchors the chain when retention removed its beginning.
   */
  async *exportChain(
    tenantId: string,
  ): AsyncGenerator<{ record: AuditRecord } | { checkpoint: AuditCheckpoint }> {
    const buffer: AuditCheckpoint[] = [];
    let cursor = 0n;
    let exhausted = false;
    const refill = async () => {
      if (exhausted) return;
      const more = await this.db.auditCheckpoint.findMany({
        where: { tenantId, seq: { gt: cursor } },
        orderBy: { seq: 'asc' },
        take: EXPORT_CHUNK,
      });
      if (more.length < EXPORT_CHUNK) exhausted = true;
      if (more.length) cursor = more[more.length - 1]!.seq;
      buffer.push(...more);
    };
    let first = true;
    for await (const record of this.export(tenantId, {})) {
      if (first) {
        cursor = record.seq - 2n; // the anchor, if any, is at seq - 1
        await refill();
      }
      while (buffer.length && buffer[0]!.seq < record.seq) {
        const c = buffer.shift()!;
        if (first && c.seq === record.seq - 1n) yield { checkpoint: c };
        if (!buffer.length) await refill();
      }
      first = false;
      yield { record };
      for (;;) {
        if (!buffer.length) await refill();
        if (!buffer.length || buffer[0]!.seq !== record.seq) break;
        yield { checkpoint: buffer.shift()! };
      }
    }
  }
}
