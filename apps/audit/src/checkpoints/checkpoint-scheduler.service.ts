/** Time-based checkpoints: a tenant whose chain grew gets one AUDIT_CHECKPOINT_INTERVAL_MS after its last. */
import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import { SERVICE_LOGGER } from '@latchkey/service-kit';
import type { Logger } from 'pino';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { PrismaClient } from '../generated/prisma/client';
import { ChainDatabase } from '../chain/chain-database';
import { lockChains, readHeads } from '../chain/chain-writer';
import { CheckpointWriter } from './checkpoint-writer';

@Injectable()
export class CheckpointScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(AUDIT_CONFIG) private readonly config: AuditConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly writer: CheckpointWriter,
    private readonly chain: ChainDatabase,
  ) {}

  onApplicationBootstrap(): void {
    const every = Math.min(this.config.AUDIT_CHECKPOINT_INTERVAL_MS, 5000);
    this.timer = setInterval(() => {
      this.running ??= this.checkpointDue()
        .catch((err: unknown) =>
          this.logger.warn({ err: (err as Error).message }, 'time-based checkpoints failed'),
        )
        .finally(() => (this.running = undefined));
    }, every);
    this.timer.unref();
  }

  // Before the chain pool closes (ChainDatabase ends it in onApplicationShutdown).
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Checkpoints every tenant that is due; returns how many were written. */
  async checkpointDue(): Promise<number> {
    const due = await this.db.$queryRawUnsafe<{ tenant_id: string }[]>(
      `SELECT tenant_id FROM audit_chain_heads
        WHERE seq > checkpoint_seq
          AND (checkpoint_at IS NULL OR checkpoint_at <= now() - make_interval(secs => $1::int / 1000.0))
        LIMIT 500`,
      this.config.AUDIT_CHECKPOINT_INTERVAL_MS,
    );
    let written = 0;
    for (const { tenant_id: tenantId } of due) {
      written += await this.chain.transaction(async (tx) => {
        await lockChains(tx, [tenantId]);
        const head = (await readHeads(tx, [tenantId])).get(tenantId);
        if (!head || head.seq <= head.checkpointSeq) return 0;
        await this.writer.write(tx, [{ tenantId, seq: head.seq, hash: head.hash }]);
        return 1;
      });
    }
    return written;
  }
}
