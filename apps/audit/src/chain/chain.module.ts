/** The hash chain: ingest (the Kafka consumer's handler), signing key, checkpoints. */
import { Module } from '@nestjs/common';
import type { BatchEventConsumerOptions } from '@latchkey/events';
import { type AuditConfig, AUDIT_CONFIG } from '../config';
import { AuditKeyring } from '../checkpoints/audit-keyring.service';
import { CheckpointScheduler } from '../checkpoints/checkpoint-scheduler.service';
import { CheckpointWriter } from '../checkpoints/checkpoint-writer';
import { ChainDatabase } from './chain-database';
import { ChainWriter } from './chain-writer';

export const AUDIT_CONSUMER = Symbol('AUDIT_CONSUMER');

@Module({
  providers: [
    ChainDatabase,
    AuditKeyring,
    CheckpointWriter,
    CheckpointScheduler,
    ChainWriter,
    {
      provide: AUDIT_CONSUMER,
      useFactory: (chain: ChainWriter, config: AuditConfig): BatchEventConsumerOptions => ({
        groupId: config.AUDIT_CONSUMER_GROUP,
        topics: config.AUDIT_TOPICS,
        deadLetterTopic: config.AUDIT_DLQ_TOPIC,
        partitionsConsumedConcurrently: config.AUDIT_PARTITIONS_CONCURRENCY,
        maxBytesPerPartition: config.AUDIT_FETCH_MAX_BYTES_PER_PARTITION,
        // A fetch holds at most this much: what bounds ingest memory (with the batch it becomes).
        maxBytes: config.AUDIT_FETCH_MAX_BYTES_PER_PARTITION * config.AUDIT_PARTITIONS_CONCURRENCY,
        // One consumer span per event (not per batch): each event's trace continues from the
        // call that caused it into audit (device-event-thread.e2e-spec.ts), at ~5% of ingest CPU.
        spanPerEvent: true,
        handle: (events) => chain.append(events),
      }),
      inject: [ChainWriter, AUDIT_CONFIG],
    },
  ],
  exports: [AUDIT_CONSUMER, ChainDatabase, ChainWriter, AuditKeyring, CheckpointScheduler],
})
export class ChainModule {}
