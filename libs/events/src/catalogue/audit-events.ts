/**
 * Events of the audit service's SOC stream, topic latchkey.audit.v1: every chained
 * record and every signed checkpoint, in chain order per tenant (key = tenant id).
 * A consumer verifies a tenant's chain from these alone:
 *   hash = SHA-256(prev_hash bytes ‖ UTF-8 of RFC 8785 JCS(record)), prev_hash of seq 1 = 64 zeros;
 *   signature = Ed25519 over JCS({hash, kid, seq, tenant_id, time}), public keys at
 *   the audit service's /.well-known/audit-keys.json.
 */
import { z } from 'zod';
import type { EventDefinition } from './catalogue';
import { Topics } from './topics';

const source = '/latchkey/audit';
const tenantId = z.string().min(1).max(128);
const hash = z.string().regex(/^[0-9a-f]{64}$/);
const seq = z.number().int().positive();

function audit<S extends z.ZodTypeAny>(def: Omit<EventDefinition<S>, 'topic' | 'source'>) {
  return { ...def, topic: Topics.audit, source } as EventDefinition<S>;
}

export const AuditRecordPublished = audit({
  type: 'dev.latchkey.audit.record.v1',
  schema: z
    .object({
      tenant_id: tenantId,
      seq,
      prev_hash: hash,
      hash,
      /** The OCSF 1.5.0 record (metadata.sequence = seq, metadata.uid = source event id). */
      record: z.record(z.unknown()),
    })
    .strict(),
  subject: (d) => `tenants/${d.tenant_id}/records/${d.seq}`,
});

export const AuditCheckpointPublished = audit({
  type: 'dev.latchkey.audit.checkpoint.v1',
  schema: z
    .object({
      tenant_id: tenantId,
      seq,
      hash,
      time: z.string().datetime(),
      kid: z.string().min(1).max(128),
      alg: z.literal('EdDSA'),
      signature: z.string().min(1),
    })
    .strict(),
  subject: (d) => `tenants/${d.tenant_id}/checkpoints/${d.seq}`,
});

/** Every audit stream event, for the catalogue. */
export const AUDIT_EVENTS: readonly EventDefinition[] = [
  AuditRecordPublished,
  AuditCheckpointPublished,
] as unknown as EventDefinition[];
