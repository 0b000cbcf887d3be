/**
 * Appends consumed events to their tenants' hash chains, one transaction per
 * batch: per-tenant advisory locks (taken in one global order, so two audit
 * instances never fork a chain nor deadlock), idempotent on the event id, seq
 * gapless, and a signed checkpoint whenever a tenant's chain has grown by
 * AUDIT_CHECKPOINT_EVERY records.
 */
import { Inject, Injectable } from '@nestjs/common';
import { context } from '@opentelemetry/api';
import type { BatchHandleResult, ConsumedEvent } from '@latchkey/events';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { type Prisma, PrismaClient } from '../generated/prisma/client';
import { CheckpointWriter } from '../checkpoints/checkpoint-writer';
import { facetsOf, toOcsf, traceIdOf } from '../records/ocsf';
import { assertCanonicalizable, canonicalJson, NotCanonicalizableError } from './canonical-json';
import { chainHashOfCanonical, GENESIS_HASH } from './hash-chain';

type Tx = Prisma.TransactionClient;

/** Takes the chain locks of `tenantIds` in one global order (hash value, then id). */
export async function lockChains(tx: Tx, tenantIds: Iterable<string>): Promise<void> {
  const keys = JSON.stringify([...new Set(tenantIds)]);
  await tx.$queryRawUnsafe(
    `SELECT count(pg_advisory_xact_lock(k)) FROM (
       SELECT DISTINCT hashtext('audit:' || t) AS k FROM jsonb_array_elements_text($1::jsonb) t
       ORDER BY 1) s`,
    keys,
  );
}

interface Head {
  seq: bigint;
  hash: string;
  checkpointSeq: bigint;
}

export async function readHeads(tx: Tx, tenantIds: string[]): Promise<Map<string, Head>> {
  const rows = await tx.$queryRawUnsafe<
    { tenant_id: string; seq: string; hash: string; checkpoint_seq: string }[]
  >(
    `SELECT tenant_id, seq::text, hash, checkpoint_seq::text FROM audit_chain_heads
      WHERE tenant_id IN (SELECT jsonb_array_elements_text($1::jsonb))`,
    JSON.stringify(tenantIds),
  );
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      { seq: BigInt(r.seq), hash: r.hash, checkpointSeq: BigInt(r.checkpoint_seq) },
    ]),
  );
}

@Injectable()
export class ChainWriter {
  private listeners: (() => void)[] = [];

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    private readonly checkpoints: CheckpointWriter,
  ) {}

  /** Called after each committed batch (the SOC stream publisher wakes up). */
  onAppended(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Records a batch in one transaction; events that cannot be hashed are returned as rejected. */
  async append(events: ConsumedEvent[]): Promise<BatchHandleResult & { appended: number }> {
    if (!events.length) return { appended: 0 };
    const rejected: { event: ConsumedEvent; reason: string }[] = [];
    const result = await context.with(events[0]!.traceContext, () =>
      this.db.$transaction(
        async (tx) => {
          const tenants = [...new Set(events.map((e) => e.tenantId))].sort();
          await lockChains(tx, tenants);
          // Read after locking: a concurrent instance may just have stored some of these.
          const seen = await tx.$queryRawUnsafe<{ event_id: string }[]>(
            `SELECT event_id::text FROM audit_records
              WHERE event_id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)`,
            JSON.stringify(events.map((e) => e.id)),
          );
          const skip = new Set(seen.map((s) => s.event_id));
          const heads = await readHeads(tx, tenants);
          const rows: Record<string, unknown>[] = [];
          const touched = new Map<string, Head>();
          const every = BigInt(this.config.AUDIT_CHECKPOINT_EVERY);
          const due: { tenantId: string; seq: bigint; hash: string }[] = [];
          for (const e of events) {
            if (skip.has(e.id)) continue; // already recorded, or twice in this batch
            skip.add(e.id);
            const head = touched.get(e.tenantId) ??
              heads.get(e.tenantId) ?? { seq: 0n, hash: GENESIS_HASH, checkpointSeq: 0n };
            const seq = head.seq + 1n;
            let canonical: string;
            let record;
            try {
              assertCanonicalizable(e.data);
              record = toOcsf(e, seq);
              canonical = canonicalJson(record);
            } catch (err) {
              if (!(err instanceof NotCanonicalizableError)) throw err;
              rejected.push({ event: e, reason: `NOT_CANONICALIZABLE: ${err.message}` });
              continue;
            }
            const hash = chainHashOfCanonical(head.hash, canonical);
            const f = facetsOf(e, record);
            rows.push({
              event_id: e.id,
              tenant_id: e.tenantId,
              seq: seq.toString(),
              event_type: e.type,
              source: e.source,
              subject: e.subject,
              time: e.time.toISOString(),
              trace_id: traceIdOf(e.traceparent),
              data: e.data,
              record,
              prev_hash: head.hash,
              hash,
              class_uid: f.classUid,
              activity_id: f.activityId,
              status_id: f.statusId,
              user_uid: f.userUid,
              device_uid: f.deviceUid,
              credential_uid: f.credentialUid,
              reason: f.reason,
            });
            let checkpointSeq = head.checkpointSeq;
            if (seq - checkpointSeq >= every) {
              due.push({ tenantId: e.tenantId, seq, hash });
              checkpointSeq = seq;
            }
            touched.set(e.tenantId, { seq, hash, checkpointSeq });
          }
          if (!rows.length) return 0;
          await tx.$executeRawUnsafe(
            `INSERT INTO audit_records (event_id, tenant_id, seq, event_type, source, subject, time,
               trace_id, data, record, prev_hash, hash, class_uid, activity_id, status_id, user_uid,
               device_uid, credential_uid, reason)
             SELECT event_id, tenant_id, seq, event_type, source, subject, time, trace_id, data,
               record, prev_hash, hash, class_uid, activity_id, status_id, user_uid, device_uid,
               credential_uid, reason
             FROM jsonb_to_recordset($1::jsonb) AS x(event_id uuid, tenant_id text, seq bigint,
               event_type text, source text, subject text, time timestamptz, trace_id text,
               data jsonb, record jsonb, prev_hash text, hash text, class_uid int, activity_id int,
               status_id int, user_uid text, device_uid text, credential_uid text, reason text)`,
            JSON.stringify(rows),
          );
          const headRows = [...touched].map(([tenant_id, h]) => ({
            tenant_id,
            seq: h.seq.toString(),
            hash: h.hash,
          }));
          await tx.$executeRawUnsafe(
            `INSERT INTO audit_chain_heads (tenant_id, seq, hash, updated_at)
             SELECT tenant_id, seq, hash, now()
               FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, seq bigint, hash text)
             ON CONFLICT (tenant_id) DO UPDATE
               SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()`,
            JSON.stringify(headRows),
          );
          if (due.length) await this.checkpoints.write(tx, due);
          return rows.length;
        },
        { timeout: 60_000, maxWait: 10_000 },
      ),
    );
    if (result) for (const l of this.listeners) l();
    return { appended: result, rejected };
  }
}
