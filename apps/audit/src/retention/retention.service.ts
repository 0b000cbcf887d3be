/**
 * Retention: per-tenant period; deletes a tenant's oldest records, but only a
 * prefix of the chain that ends at a signed checkpoint, so that verification can
 * start from that checkpoint. The database trigger enforces the same rules.
 */
import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import { DomainError, parseRequest, SERVICE_LOGGER } from '@latchkey/service-kit';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { PrismaClient } from '../generated/prisma/client';
import { ChainDatabase } from '../chain/chain-database';
import { lockChains } from '../chain/chain-writer';

const policySchema = z.object({
  tenantId: z.string().min(1).max(128),
  retentionDays: z.number().int().min(1).max(36_500),
});

@Injectable()
export class RetentionService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly chain: ChainDatabase,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.enforce()
        .catch((err: unknown) =>
          this.logger.warn({ err: (err as Error).message }, 'retention run failed'),
        )
        .finally(() => (this.running = undefined));
    }, this.config.AUDIT_RETENTION_INTERVAL_MS);
    this.timer.unref();
  }

  // Before the chain pool closes (ChainDatabase ends it in onApplicationShutdown).
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async setPolicy(input: { tenantId: string; retentionDays: number }) {
    const p = parseRequest(policySchema, input, 'INVALID_RETENTION_POLICY');
    return this.db.auditRetentionPolicy.upsert({
      where: { tenantId: p.tenantId },
      create: p,
      update: { retentionDays: p.retentionDays },
    });
  }

  async getPolicy(tenantId: string) {
    const p = await this.db.auditRetentionPolicy.findUnique({ where: { tenantId } });
    if (!p)
      throw DomainError.notFound('RETENTION_POLICY_NOT_FOUND', 'the tenant keeps every record');
    return p;
  }

  /** Applies every tenant's policy; returns the records deleted per tenant. */
  async enforce(onlyTenant?: string): Promise<Record<string, number>> {
    const policies = await this.db.auditRetentionPolicy.findMany({
      where: onlyTenant ? { tenantId: onlyTenant } : {},
    });
    const deleted: Record<string, number> = {};
    for (const p of policies) {
      const n = await this.chain.transaction(async (tx) => {
        await lockChains(tx, [p.tenantId]);
        const cutoff = new Date(Date.now() - p.retentionDays * 86_400_000);
        // The first record still within retention bounds the deletable prefix...
        const { rows: bound } = await tx.query<{ first_kept: string | null }>(
          `SELECT min(seq)::text AS first_kept FROM audit_records WHERE tenant_id = $1 AND time >= $2`,
          [p.tenantId, cutoff],
        );
        // ...which must end at a checkpoint.
        const { rows: anchor } = await tx.query<{ seq: string | null }>(
          `SELECT max(seq)::text AS seq FROM audit_checkpoints
            WHERE tenant_id = $1 AND ($2::bigint IS NULL OR seq < $2::bigint)`,
          [p.tenantId, bound[0]?.first_kept ?? null],
        );
        const upTo = anchor[0]?.seq;
        if (!upTo) return 0;
        await tx.query(`SET LOCAL latchkey.audit_retention = 'on'`);
        const deleted = await tx.query(
          `DELETE FROM audit_records WHERE tenant_id = $1 AND seq <= $2::bigint`,
          [p.tenantId, upTo],
        );
        await tx.query(
          `UPDATE audit_chain_heads SET retained_from_seq = greatest(retained_from_seq, $2::bigint + 1)
            WHERE tenant_id = $1`,
          [p.tenantId, upTo],
        );
        return deleted.rowCount ?? 0;
      });
      if (n) {
        deleted[p.tenantId] = n;
        this.logger.info({ tenantId: p.tenantId, deleted: n }, 'retention deleted expired records');
      }
    }
    return deleted;
  }
}
