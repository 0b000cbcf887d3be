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
import { CheckpointWriter } from '../checkpoints/checkpoint-writer';
import { facetsOf, toOcsf, traceIdOf } from '../records/ocsf';
import { assertCanonicalizable, canonicalizeTree, NotCanonicalizableError } from './canonical-json';
import { ChainDatabase, copyField, copyFrom, type SqlTx } from './chain-database';
import { chainHashOfCanonical, GENESIS_HASH } from './hash-chain';

/** Takes the chain locks of `tenantIds` in one global order (lock key, ascending). */
export async function lockChains(tx: SqlTx, tenantIds: Iterable<string>): Promise<void> {
  await tx.query(
    `SELECT count(pg_advisory_xact_lock(k)) FROM (
       SELECT DISTINCT hashtext('audit:' || t) AS k FROM unnest($1::text[]) t ORDER BY 1) s`,
    [[...new Set(tenantIds)]],
  );
}

export interface ChainHead {
  seq: bigint;
  hash: string;
  checkpointSeq: bigint;
}

export async function readHeads(tx: SqlTx, tenantIds: string[]): Promise<Map<string, ChainHead>> {
  const { rows } = await tx.query<{
    tenant_id: string;
    seq: string;
    hash: string;
    checkpoint_seq: string;
  }>(
    `SELECT tenant_id, seq, hash, checkpoint_seq FROM audit_chain_heads
      WHERE tenant_id = ANY($1::text[])`,
    [tenantIds],
  );
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      { seq: BigInt(r.seq), hash: r.hash, checkpointSeq: BigInt(r.checkpoint_seq) },
    ]),
  );
}

const COPY_RECORDS = `COPY audit_records (event_id, tenant_id, seq, event_type, source, subject, time, trace_id, data, record, prev_hash, hash, class_uid, activity_id, status_id, user_uid, device_uid, credential_uid, reason) FROM STDIN`;
// Columns made here from validated values (digits, hex, ISO times, catalogue types): no escaping.
const SAFE_FIELD = [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1].map(Boolean);
// COPY data goes out in chunks of about this many characters (one Buffer each).
const COPY_CHUNK = 256 * 1024;

/** COPY rows of one batch, chunked (no multi-megabyte string: memory stays proportional to a chunk). */
class CopyRows {
  readonly chunks: Buffer[] = [];
  private lines: string[] = [];
  private size = 0;
  length = 0;

  /** One row, `fields` in COPY_RECORDS order (SAFE_FIELD says which need no escaping). */
  add(fields: (string | number | null)[]): void {
    let line = copyField(fields[0]!);
    for (let i = 1; i < fields.length; i++) {
      const f = fields[i]!;
      line += '\t' + (SAFE_FIELD[i] && f !== null ? f : copyField(f));
    }
    line += '\n';
    this.lines.push(line);
    this.size += line.length;
    this.length++;
    if (this.size >= COPY_CHUNK) this.flush();
  }

  flush(): Buffer[] {
    if (this.lines.length) this.chunks.push(Buffer.from(this.lines.join(''), 'utf8'));
    this.lines = [];
    this.size = 0;
    return this.chunks;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// PostgreSQL cannot store U+0000 in text or jsonb: refuse it up front instead of failing the batch.
const NUL = '\u0000';

@Injectable()
export class ChainWriter {
  private listeners: (() => void)[] = [];

  constructor(
    private readonly db: ChainDatabase,
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
    // Pure work first, outside the transaction (and its locks).
    const valid: ConsumedEvent[] = [];
    for (const e of events) {
      // The id is the idempotency key, a uuid column: anything else would fail the whole batch.
      if (!UUID.test(e.id)) {
        rejected.push({ event: e, reason: 'INVALID_ID: ce_id is not a UUID' });
        continue;
      }
      try {
        assertCanonicalizable(e.data);
        for (const v of [e.id, e.type, e.source, e.subject, e.tenantId, e.traceparent ?? ''])
          if (v.includes(NUL)) throw new NotCanonicalizableError('(attributes)', 'contain U+0000');
        valid.push(e);
      } catch (err) {
        if (!(err instanceof NotCanonicalizableError)) throw err;
        rejected.push({ event: e, reason: `NOT_CANONICALIZABLE: ${err.message}` });
      }
    }
    if (!valid.length) return { appended: 0, rejected };
    const every = BigInt(this.config.AUDIT_CHECKPOINT_EVERY);
    const appended = await context.with(valid[0]!.traceContext, () =>
      this.db.transaction(async (tx) => {
        const tenants = [...new Set(valid.map((e) => e.tenantId))];
        await lockChains(tx, tenants);
        // Read after locking: a concurrent instance may just have stored some of these.
        const { rows: seen } = await tx.query<{ event_id: string }>(
          `SELECT event_id FROM audit_records WHERE event_id = ANY($1::uuid[])`,
          [valid.map((e) => e.id)],
        );
        const skip = new Set(seen.map((s) => s.event_id));
        const heads = await readHeads(tx, tenants);
        const rows = new CopyRows();
        const touched = new Map<string, ChainHead>();
        const due: { tenantId: string; seq: bigint; hash: string }[] = [];
        for (const e of valid) {
          const id = e.id.toLowerCase(); // as PostgreSQL returns a uuid
          if (skip.has(id)) continue; // already recorded, or twice in this batch
          skip.add(id);
          const head = touched.get(e.tenantId) ??
            heads.get(e.tenantId) ?? { seq: 0n, hash: GENESIS_HASH, checkpointSeq: 0n };
          const seq = head.seq + 1n;
          const record = toOcsf(e, seq);
          const canonical = canonicalizeTree(record);
          const hash = chainHashOfCanonical(head.hash, canonical);
          const f = facetsOf(e, record);
          rows.add([
            e.id,
            e.tenantId,
            seq.toString(),
            e.type,
            e.source,
            e.subject,
            e.time.toISOString(),
            traceIdOf(e.traceparent),
            JSON.stringify(e.data),
            canonical, // stored as the exact text that was hashed (a json column)
            head.hash,
            hash,
            f.classUid,
            f.activityId,
            f.statusId,
            f.userUid,
            f.deviceUid,
            f.credentialUid,
            f.reason,
          ]);
          let checkpointSeq = head.checkpointSeq;
          if (seq - checkpointSeq >= every) {
            due.push({ tenantId: e.tenantId, seq, hash });
            checkpointSeq = seq;
          }
          touched.set(e.tenantId, { seq, hash, checkpointSeq });
        }
        if (!rows.length) return 0;
        await copyFrom(tx, COPY_RECORDS, rows.flush());
        const heads2 = [...touched];
        await tx.query(
          `INSERT INTO audit_chain_heads (tenant_id, seq, hash, updated_at)
           SELECT t, s, h, now() FROM unnest($1::text[], $2::bigint[], $3::text[]) AS x(t, s, h)
           ON CONFLICT (tenant_id) DO UPDATE
             SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()`,
          [
            heads2.map(([t]) => t),
            heads2.map(([, h]) => h.seq.toString()),
            heads2.map(([, h]) => h.hash),
          ],
        );
        if (due.length) await this.checkpoints.write(tx, due);
        return rows.length;
      }),
    );
    if (appended) for (const l of this.listeners) l();
    return { appended, rejected };
  }
}
