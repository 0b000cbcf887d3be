/** Configuration of the audit service (validated at boot; each variable is named on error). */
import { DOMAIN_TOPICS, Topics } from '@latchkey/events';
import { keyEncryptionConfigShape } from '@latchkey/crypto';
import {
  baseConfigShape,
  databaseConfigShape,
  tokenValidationConfigShape,
} from '@latchkey/service-kit';
import { z } from 'zod';

const topicList = z
  .string()
  .min(1)
  .transform((s) =>
    s
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
  )
  .refine((l) => l.length > 0 && l.every((t) => /^[A-Za-z0-9._-]{1,249}$/.test(t)), {
    message: 'expected topic[,topic]',
  });

const positiveInt = z.coerce.number().int().positive();

export const auditConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  ...tokenValidationConfigShape,
  ...keyEncryptionConfigShape,
  AUDIT_CONSUMER_GROUP: z.string().min(1).default('latchkey-audit'),
  /** Domain topics consumed (tests and benchmarks point an instance at their own). */
  AUDIT_TOPICS: topicList.default(DOMAIN_TOPICS.join(',')),
  /** The SOC stream. */
  AUDIT_STREAM_TOPIC: z.string().min(1).default(Topics.audit),
  AUDIT_DLQ_TOPIC: z.string().min(1).default(Topics.auditDlq),
  /** A signed checkpoint after this many records of a tenant... */
  AUDIT_CHECKPOINT_EVERY: positiveInt.default(1000),
  /** ...or this long after a tenant's last checkpoint when its chain has grown. */
  AUDIT_CHECKPOINT_INTERVAL_MS: positiveInt.default(60_000),
  /** Kafka partitions of one consumer processed at once. */
  AUDIT_PARTITIONS_CONCURRENCY: positiveInt.max(64).default(3),
  /**
   * Kafka fetch size per partition (bytes): larger batches mean fewer transactions, but a
   * fetch and the batches made from it are what ingest holds in memory. 1 MiB (~1,500
   * events) already amortizes a transaction; 4 MiB cost 80 MiB more RSS for no speed.
   */
  AUDIT_FETCH_MAX_BYTES_PER_PARTITION: positiveInt.default(1024 * 1024),
  /** How often the retention job runs. */
  AUDIT_RETENTION_INTERVAL_MS: positiveInt.default(3_600_000),
  /** Publish the SOC stream from this instance ("false" for ingest-only instances). */
  AUDIT_STREAM_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
};

export type AuditConfig = z.infer<z.ZodObject<typeof auditConfigShape>>;
export const AUDIT_CONFIG = 'AUDIT_CONFIG';
