/**
 * Publishes every chained record and checkpoint to the SOC stream
 * (latchkey.audit.v1) in chain order per tenant, key = tenant id. Driven by the
 * database, not by the consumer: a crash between the chain commit and the publish
 * loses nothing (the per-tenant cursors in audit_chain_heads advance only after
 * the broker acknowledged). At-least-once: a consumer may see a record twice,
 * always with the same seq and hash. One instance publishes at a time.
 */
import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import { encodeEvent, KafkaEventBus } from '@latchkey/events';
import { AuditCheckpointPublished, AuditRecordPublished } from '@latchkey/events';
import { SERVICE_LOGGER } from '@latchkey/service-kit';
import type { Logger } from 'pino';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { ChainDatabase, type SqlTx } from '../chain/chain-database';
import { ChainWriter } from '../chain/chain-writer';

// A round holds about ROUND_RECORDS records (~7 MB of JSON), shared by its tenants:
// one busy tenant gets them all, a hundred busy tenants 50 each.
const TENANTS_PER_ROUND = 100;
const ROUND_RECORDS = 5000;
const MAX_SEND_BYTES = 512 * 1024;

interface StreamRow {
  kind: 'record' | 'checkpoint';
  tenant_id: string;
  seq: string;
  hash: string;
  time: Date;
  prev_hash: string | null;
  record: string | null;
  kid: string | null;
  signature: string | null;
}

@Injectable()
export class AuditStreamPublisher implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private stopped = false;
  private wake?: () => void;
  private pending = false;
  private loop?: Promise<void>;

  constructor(
    private readonly chain: ChainDatabase,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly bus: KafkaEventBus,
    writer: ChainWriter,
  ) {
    writer.onAppended(() => this.poke());
  }

  poke(): void {
    this.pending = true;
    this.wake?.();
  }

  onApplicationBootstrap(): void {
    if (!this.config.AUDIT_STREAM_ENABLED) return;
    this.loop = this.run();
  }

  // Before the chain pool closes (ChainDatabase ends it in onApplicationShutdown).
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      this.pending = false;
      let published = 0;
      try {
        published = await this.publishRound();
        failures = 0;
      } catch (err) {
        failures++;
        this.logger.warn({ err: (err as Error).message, failures }, 'audit stream publish failed');
      }
      if (published > 0 && !failures) continue;
      const delay = failures ? Math.min(250 * 2 ** Math.min(failures, 5), 5000) : 1000;
      if (this.pending && !failures) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One round: publishes what is pending for up to TENANTS_PER_ROUND tenants. */
  async publishRound(): Promise<number> {
    // A session lock (not a transaction): reading, publishing and advancing the cursors
    // hold no row locks that the chain writers would wait for. A crash ends the session.
    return this.chain.withClient(async (tx) => {
      const { rows: lock } = await tx.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_lock(hashtext('audit:stream')) AS locked`,
      );
      if (!lock[0]?.locked) return 0;
      try {
        return await this.publishPending(tx);
      } finally {
        await tx.query(`SELECT pg_advisory_unlock(hashtext('audit:stream'))`);
      }
    });
  }

  private async publishPending(tx: SqlTx): Promise<number> {
    const { rows: heads } = await tx.query<{
      tenant_id: string;
      streamed_seq: string;
      streamed_checkpoint_seq: string;
    }>(
      `SELECT tenant_id, streamed_seq, streamed_checkpoint_seq FROM audit_chain_heads
        WHERE streamed_seq < seq OR streamed_checkpoint_seq < checkpoint_seq
        ORDER BY updated_at LIMIT ${TENANTS_PER_ROUND}`,
    );
    if (!heads.length) return 0;
    const perTenant = Math.max(50, Math.floor(ROUND_RECORDS / heads.length));
    // record::text is the stored json text (the hashed RFC 8785 form for records written
    // since the json migration): embedded as is, never re-parsed here. Consumers
    // canonicalize before hashing either way.
    const { rows } = await tx.query<StreamRow>(
      `WITH h AS (
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
           AS x(tenant_id, streamed_seq, streamed_checkpoint_seq)),
       r AS (
         SELECT 'record' AS kind, a.tenant_id, a.seq, a.hash, a.time, a.prev_hash,
                a.record::text AS record, NULL::text AS kid, NULL::text AS signature
           FROM h CROSS JOIN LATERAL (
             SELECT * FROM audit_records ar
              WHERE ar.tenant_id = h.tenant_id AND ar.seq > h.streamed_seq
              ORDER BY ar.seq LIMIT ${perTenant}) a),
       lim AS (
         SELECT h.tenant_id, greatest(h.streamed_seq, coalesce(max(r.seq), 0)) AS upto
           FROM h LEFT JOIN r ON r.tenant_id = h.tenant_id GROUP BY h.tenant_id, h.streamed_seq),
       c AS (
         SELECT 'checkpoint' AS kind, c.tenant_id, c.seq, c.hash, c.time, NULL::text, NULL::text,
                c.kid, c.signature
           FROM h JOIN lim ON lim.tenant_id = h.tenant_id
           JOIN audit_checkpoints c ON c.tenant_id = h.tenant_id
            AND c.seq > h.streamed_checkpoint_seq AND c.seq <= lim.upto)
       SELECT kind, tenant_id, seq::text AS seq, hash, time, prev_hash, record, kid, signature
         FROM (SELECT * FROM r UNION ALL SELECT * FROM c) u
        ORDER BY u.tenant_id, u.seq, u.kind DESC`,
      [
        heads.map((x) => x.tenant_id),
        heads.map((x) => x.streamed_seq),
        heads.map((x) => x.streamed_checkpoint_seq),
      ],
    );
    if (!rows.length) return 0;
    const messages = rows.map((row) => this.toMessage(row));
    // In sends well below the broker's batch limit (1 MiB by default), in order.
    for (let i = 0, bytes = 0, from = 0; i <= messages.length; i++) {
      const size = i < messages.length ? messages[i]!.value.length + 512 : 0;
      if (i === messages.length || (bytes + size > MAX_SEND_BYTES && i > from)) {
        await this.bus.publishRaw(this.config.AUDIT_STREAM_TOPIC, messages.slice(from, i));
        from = i;
        bytes = 0;
      }
      bytes += size;
    }
    const progress = new Map<string, { records: string; checkpoints: string }>();
    for (const row of rows) {
      const p = progress.get(row.tenant_id) ?? { records: '0', checkpoints: '0' };
      if (row.kind === 'record') p.records = row.seq;
      else p.checkpoints = row.seq;
      progress.set(row.tenant_id, p);
    }
    const list = [...progress];
    await tx.query(
      `UPDATE audit_chain_heads h
          SET streamed_seq = greatest(h.streamed_seq, x.r),
              streamed_checkpoint_seq = greatest(h.streamed_checkpoint_seq, x.c)
         FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS x(t, r, c)
        WHERE h.tenant_id = x.t`,
      [list.map(([t]) => t), list.map(([, p]) => p.records), list.map(([, p]) => p.checkpoints)],
    );
    return rows.length;
  }

  private toMessage(row: StreamRow): {
    key: string;
    value: string;
    headers: Record<string, string>;
  } {
    const event = this.toEvent(row);
    const encoded = encodeEvent({ ...event, data: {} });
    const value =
      row.kind === 'record'
        ? `{"tenant_id":${JSON.stringify(row.tenant_id)},"seq":${row.seq},"prev_hash":"${row.prev_hash}","hash":"${row.hash}","record":${row.record}}`
        : JSON.stringify(event.data);
    return { key: encoded.key, value, headers: encoded.headers as Record<string, string> };
  }

  private toEvent(row: StreamRow) {
    const time = new Date(row.time);
    if (row.kind === 'record') {
      return {
        id: `${row.tenant_id}/records/${row.seq}`,
        type: AuditRecordPublished.type,
        source: AuditRecordPublished.source,
        subject: `tenants/${row.tenant_id}/records/${row.seq}`,
        tenantId: row.tenant_id,
        time,
        data: {}, // the value is assembled in toMessage around the stored record's JSON text
      };
    }
    return {
      id: `${row.tenant_id}/checkpoints/${row.seq}`,
      type: AuditCheckpointPublished.type,
      source: AuditCheckpointPublished.source,
      subject: `tenants/${row.tenant_id}/checkpoints/${row.seq}`,
      tenantId: row.tenant_id,
      time,
      data: {
        tenant_id: row.tenant_id,
        seq: Number(row.seq),
        hash: row.hash,
        time: time.toISOString(),
        kid: row.kid,
        alg: 'EdDSA',
        signature: row.signature,
      },
    };
  }
}
