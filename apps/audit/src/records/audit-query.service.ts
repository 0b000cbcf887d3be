/** Reads audit records of one tenant with filters and cursor pagination. */
import { Inject, Injectable } from '@nestjs/common';
import { DomainError, parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';
import { type AuditRecord, PrismaClient } from '../generated/prisma/client';

const query = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  eventType: z.string().max(256).optional(),
  subject: z.string().max(512).optional(),
  pageSize: z.number().int().min(0).max(500).optional(),
  pageToken: z.string().max(64).optional(),
});

export type AuditQuery = z.infer<typeof query>;

function decodeToken(token: string): bigint {
  const text = Buffer.from(token, 'base64url').toString();
  if (!/^seq:\d{1,19}$/.test(text))
    throw DomainError.invalidArgument(
      'INVALID_PAGE_TOKEN',
      'pageToken is not one this service issued',
    );
  return BigInt(text.slice(4));
}

@Injectable()
export class AuditQueryService {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  async query(input: unknown): Promise<{ records: AuditRecord[]; nextPageToken: string }> {
    const q = parseRequest(query, input, 'INVALID_AUDIT_QUERY');
    const pageSize = q.pageSize || 50;
    const after = q.pageToken ? decodeToken(q.pageToken) : 0n;
    const rows = await this.db.auditRecord.findMany({
      where: {
        tenantId: q.tenantId,
        seq: { gt: after },
        ...(q.eventType ? { eventType: q.eventType } : {}),
        ...(q.subject ? { subject: q.subject } : {}),
      },
      orderBy: { seq: 'asc' },
      take: pageSize + 1,
    });
    const records = rows.slice(0, pageSize);
    const nextPageToken =
      rows.length > pageSize
        ? Buffer.from(`seq:${records[records.length - 1]!.seq}`).toString('base64url')
        : '';
    return { records, nextPageToken };
  }
}
