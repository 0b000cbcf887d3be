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
  type OnApplicationShutdown,
} from '@nestjs/common';
import { encodeEvent, KafkaEventBus } from '@latchkey/events';
import { AuditCheckpointPublished, AuditRecordPublished } from '@latchkey/events';
import { SERVICE_LOGGER } from '@latchkey/service-kit';
import type { Logger } from 'pino';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { PrismaClient } from '../generated/prisma/client';
import { ChainWriter } from '../chain/chain-writer';

const TENANTS_PER_ROUND = 200;
const RECORDS_PER_TENANT = 2000;
const MAX_SEND_BYTES = 512 * 1024;

interface StreamRow {
  kind: 'record' | 'checkpoint';
  tenant_id: string;
  seq: string;
  hash: string;
  time: Date;
  prev_hash: string | null;
  record: unknown;
  kid: string | null;
  signature: string | null;
}

@Injectable()
export class AuditStreamPublisher implements OnApplicationBootstrap, OnApplicationShutdown {
  private stopped = false;
  private wake?: () => void;
  private pending = false;
  private loop?: Promise<void>;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly bus: KafkaEventBus,
    chain: ChainWriter,
  ) {
    chain.onAppended(() => this.poke());
  }

  poke(): void {
    this.pending = true;
    this.wake?.();
  }

  onApplicationBootstrap(): void {
    if (!this.config.AUDIT_STREAM_ENABLED) return;
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
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
    return this.db.$transaction(
      async (tx) => {
        const [{ locked }] = (await tx.$queryRawUnsafe<{ locked: boolean }[]>(
          `SELECT pg_try_advisory_xact_lock(hashtext('audit:stream')) AS locked`,
        )) as [{ locked: boolean }];
        if (!locked) return 0;
        const heads = await tx.$queryRawUnsafe<
          { tenant_id: string; streamed_seq: string; streamed_checkpoint_seq: string }[]
        >(
          `SELECT tenant_id, streamed_seq::text, streamed_checkpoint_seq::text FROM audit_chain_heads
            WHERE streamed_seq < seq OR streamed_checkpoint_seq < checkpoint_seq
            ORDER BY updated_at LIMIT ${TENANTS_PER_ROUND}`,
        );
        if (!heads.length) return 0;
        const rows = await tx.$queryRawUnsafe<StreamRow[]>(
          `WITH h AS (
             SELECT * FROM jsonb_to_recordset($1::jsonb)
               AS x(tenant_id text, streamed_seq bigint, streamed_checkpoint_seq bigint)),
           r AS (
             SELECT 'record' AS kind, a.tenant_id, a.seq, a.hash, a.time, a.prev_hash, a.record,
                    NULL::text AS kid, NULL::text AS signature
               FROM h CROSS JOIN LATERAL (
                 SELECT * FROM audit_records ar
                  WHERE ar.tenant_id = h.tenant_id AND ar.seq > h.streamed_seq
                  ORDER BY ar.seq LIMIT ${RECORDS_PER_TENANT}) a),
           lim AS (
             SELECT h.tenant_id, greatest(h.streamed_seq, coalesce(max(r.seq), 0)) AS upto
               FROM h LEFT JOIN r ON r.tenant_id = h.tenant_id GROUP BY h.tenant_id, h.streamed_seq),
           c AS (
             SELECT 'checkpoint' AS kind, c.tenant_id, c.seq, c.hash, c.time, NULL::text, NULL::jsonb,
                    c.kid, c.signature
               FROM h JOIN lim ON lim.tenant_id = h.tenant_id
               JOIN audit_checkpoints c ON c.tenant_id = h.tenant_id
                AND c.seq > h.streamed_checkpoint_seq AND c.seq <= lim.upto)
           SELECT kind, tenant_id, seq::text, hash, time, prev_hash, record, kid, signature
             FROM (SELECT * FROM r UNION ALL SELECT * FROM c) u
            ORDER BY u.tenant_id, u.seq, u.kind DESC`,
          JSON.stringify(heads),
        );
        if (!rows.length) return 0;
        const messages = rows.map((row) => {
          const m = encodeEvent(this.toEvent(row));
          return { key: m.key, value: m.value, headers: m.headers as Record<string, string> };
        });
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
        await tx.$executeRawUnsafe(
          `UPDATE audit_chain_heads h
              SET streamed_seq = greatest(h.streamed_seq, x.records),
                  streamed_checkpoint_seq = greatest(h.streamed_checkpoint_seq, x.checkpoints)
             FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, records bigint, checkpoints bigint)
            WHERE h.tenant_id = x.tenant_id`,
          JSON.stringify([...progress].map(([tenant_id, p]) => ({ tenant_id, ...p }))),
        );
        return rows.length;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );
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
        data: {
          tenant_id: row.tenant_id,
          seq: Number(row.seq),
          prev_hash: row.prev_hash,
          hash: row.hash,
          record: row.record,
        },
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
