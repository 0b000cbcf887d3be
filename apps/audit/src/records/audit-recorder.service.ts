/** Stores consumed events as audit records: idempotent on the event id, sequenced per tenant. */
import { Inject, Injectable } from '@nestjs/common';
import { context } from '@opentelemetry/api';
import type { ConsumedEvent } from '@latchkey/events';
import { Prisma, PrismaClient } from '../generated/prisma/client';
import { toOcsf, traceIdOf } from './ocsf';

@Injectable()
export class AuditRecorder {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  /** Records a batch in one transaction; returns how many were new. */
  async record(events: ConsumedEvent[]): Promise<number> {
    if (!events.length) return 0;
    return context.with(events[0]!.traceContext, () =>
      this.db.$transaction(async (tx) => {
        const seen = await tx.auditRecord.findMany({
          where: { eventId: { in: events.map((e) => e.id) } },
          select: { eventId: true },
        });
        const skip = new Set(seen.map((s) => s.eventId));
        const fresh: ConsumedEvent[] = [];
        for (const e of events) {
          if (skip.has(e.id)) continue; // already recorded, or twice in this batch
          skip.add(e.id);
          fresh.push(e);
        }
        const byTenant = new Map<string, ConsumedEvent[]>();
        for (const e of fresh) byTenant.set(e.tenantId, [...(byTenant.get(e.tenantId) ?? []), e]);
        for (const [tenantId, list] of [...byTenant].sort(([a], [b]) => a.localeCompare(b))) {
          // Serialize writers of one tenant's sequence.
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${'audit:' + tenantId}))`;
          const last = await tx.auditRecord.aggregate({ where: { tenantId }, _max: { seq: true } });
          let seq = last._max.seq ?? 0n;
          await tx.auditRecord.createMany({
            data: list.map((e) => ({
              eventId: e.id,
              tenantId,
              seq: ++seq,
              eventType: e.type,
              source: e.source,
              subject: e.subject,
              time: e.time,
              traceId: traceIdOf(e.traceparent),
              data: e.data as Prisma.InputJsonValue,
              record: toOcsf(e) as Prisma.InputJsonValue,
            })),
          });
        }
        return fresh.length;
      }),
    );
  }
}
