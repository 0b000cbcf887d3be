/**
 * Stores checked registrations: registrations that wait on the same enrollment
 * authorization (one join token, or user tokens of one tenant) are written
 * together by one SQL statement that takes their join-token uses, inserts the
 * devices and their certificates and writes their events to the outbox, all or
 * nothing. One commit (one WAL flush) and one join-token row lock per batch,
 * never held across a round trip to this process: with a shared N-use token
 * the registrations queue here instead of on that row's lock.
 */
import { Inject, Injectable } from '@nestjs/common';
import { type OutboxRecord } from '@latchkey/events';
import { type Device, PrismaClient, type Tenant } from '../generated/prisma/client';

/** A registration checked in full (token precheck, CSR, keys, attestation, policy), certificate signed. */
export interface CheckedRegistration {
  /** The device row as it is to be stored (its certificate in it). */
  device: Device;
  certificateNotBefore: Date;
  /** SHA-256 of the join token, for a join_token enrollment. */
  joinTokenHash?: Buffer;
  /** Its device.registered event. */
  event: OutboxRecord;
  /** The tenant's device policy the checks applied; stored only if it is still in force. */
  policy: Pick<Tenant, 'requireTpm' | 'certificateValidityDays' | 'tpmRootsPem'>;
}

/**
 * - `stored`: the device, its certificate and its event are committed;
 * - `not_admitted`: the join token gave no use (used up, revoked or expired meanwhile);
 * - `policy_changed`: the tenant's device policy is no longer the one checked against.
 * Nothing is stored unless `stored`.
 */
export type WriteOutcome = 'stored' | 'not_admitted' | 'policy_changed';

/** Registrations per statement. */
const MAX_BATCH = 100;

interface Waiting {
  registration: CheckedRegistration;
  resolve(outcome: WriteOutcome): void;
  reject(err: unknown): void;
}

@Injectable()
export class RegistrationWriter {
  /** Registrations waiting, per enrollment authorization (token hash or tenant). */
  private readonly queues = new Map<string, Waiting[]>();

  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  /** Stores the registration when its join token (if any) still admits it and the policy holds. */
  write(registration: CheckedRegistration): Promise<WriteOutcome> {
    const { tenantId } = registration.device;
    const key = registration.joinTokenHash
      ? `${tenantId}:${registration.joinTokenHash.toString('base64')}`
      : tenantId;
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue) {
        queue.push({ registration, resolve, reject });
        return;
      }
      // Nothing in flight for this key: write now; whoever arrives meanwhile joins the next batch.
      this.queues.set(key, []);
      void this.drain(key, [{ registration, resolve, reject }]);
    });
  }

  private async drain(key: string, first: Waiting[]): Promise<void> {
    let batch = first;
    while (batch.length) {
      // Batches are cut by policy too: one statement checks one policy snapshot.
      const policy = batch[0]!.registration.policy;
      const now = batch
        .filter((w) => samePolicy(w.registration.policy, policy))
        .slice(0, MAX_BATCH);
      const later = batch.filter((w) => !now.includes(w));
      try {
        const outcomes = await this.store(now.map((w) => w.registration));
        now.forEach((w, i) => w.resolve(outcomes[i]!));
      } catch (err) {
        for (const w of now) w.reject(err);
      }
      const queue = this.queues.get(key)!;
      batch = [...later, ...queue.splice(0)];
    }
    this.queues.delete(key);
  }

  /** One statement for registrations of one tenant, one authorization and one policy snapshot. */
  private async store(batch: CheckedRegistration[]): Promise<WriteOutcome[]> {
    const { device: first, policy, joinTokenHash } = batch[0]!;
    const { tenantId } = first;
    const at = first.createdAt;
    // One array per column (27 bind parameters, whatever the batch size), as text: the casts are
    // in the statement.
    const column = (value: (r: CheckedRegistration) => string | null) => batch.map(value);
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    const hasToken = joinTokenHash !== undefined;
    // prev locks the token row (after any concurrent batch commits) and reads its count; the
    // UPDATE takes as many uses as are left, up to the batch size; gate says how many are admitted.
    const [result] = await this.db.$queryRaw<{ admitted: number; policy_held: boolean }[]>`
      WITH req AS (
        SELECT * FROM unnest(
          ${column((r) => r.device.id)}::uuid[], ${column((r) => r.device.displayName)}::text[],
          ${column((r) => r.device.osType)}::text[], ${column((r) => r.device.osVersion)}::text[],
          ${column((r) => r.device.joinType)}::text[],
          ${column((r) => r.device.attestationLevel)}::text[],
          ${column((r) => r.device.csrPem)}::text[],
          ${column((r) => r.device.transportPublicKey)}::text[],
          ${column((r) => r.device.transportKeyThumbprint)}::text[],
          ${column((r) => (r.device.deviceKeySpki ? Buffer.from(r.device.deviceKeySpki).toString('hex') : null))}::text[],
          ${column((r) => r.device.deviceKeyThumbprint)}::text[],
          ${column((r) => r.device.certificateSerial)}::text[],
          ${column((r) => r.device.certificatePem)}::text[],
          ${column((r) => iso(r.certificateNotBefore))}::timestamptz[],
          ${column((r) => iso(r.device.certificateNotAfter))}::timestamptz[],
          ${column((r) => r.device.enrollment)}::text[],
          ${column((r) => r.device.joinTokenId)}::uuid[], ${column((r) => r.device.enrolledBy)}::text[],
          ${column((r) => iso(r.device.createdAt))}::timestamptz[],
          ${column((r) => r.event.eventId)}::uuid[], ${column((r) => r.event.type)}::text[],
          ${column((r) => r.event.source)}::text[], ${column((r) => r.event.subject)}::text[],
          ${column((r) => iso(r.event.time))}::timestamptz[],
          ${column((r) => JSON.stringify(r.event.data))}::jsonb[],
          ${column((r) => r.event.traceparent)}::text[], ${column((r) => r.event.tracestate)}::text[]
        ) WITH ORDINALITY AS r (id, display_name, os_type, os_version, join_type, attestation_level,
          csr_pem, transport_public_key, transport_key_thumbprint, device_key_spki_hex,
          device_key_thumbprint, certificate_serial, certificate_pem, not_before, not_after,
          enrollment, join_token_id, enrolled_by, created_at, event_id, event_type, event_source,
          event_subject, event_time, event_data, traceparent, tracestate, ord)
      ),
      policy AS (
        SELECT 1 FROM tenants
         WHERE id = ${tenantId}::uuid AND require_tpm = ${policy.requireTpm}
           AND certificate_validity_days = ${policy.certificateValidityDays}
           AND COALESCE(tpm_roots_pem, ARRAY[]::text[]) = ${policy.tpmRootsPem}::text[]
      ),
      prev AS (
        SELECT id, use_count FROM join_tokens
         WHERE ${hasToken} AND token_hash = ${joinTokenHash ?? Buffer.alloc(0)}
           AND tenant_id = ${tenantId}::uuid AND revoked_at IS NULL AND expires_at > ${at}
           AND use_count < max_uses AND EXISTS (SELECT 1 FROM policy)
         FOR UPDATE
      ),
      token AS (
        UPDATE join_tokens j SET use_count = j.use_count + LEAST(${batch.length}, j.max_uses - prev.use_count)
          FROM prev WHERE j.id = prev.id
        RETURNING LEAST(${batch.length}, j.max_uses - prev.use_count) AS admitted
      ),
      gate AS (
        SELECT admitted FROM token
        UNION ALL
        SELECT ${batch.length}::int WHERE NOT ${hasToken} AND EXISTS (SELECT 1 FROM policy)
      ),
      device AS (
        INSERT INTO devices (id, tenant_id, display_name, os_type, os_version, join_type, status,
                             attestation_level, csr_pem, transport_public_key, transport_key_thumbprint,
                             device_key_spki, device_key_thumbprint, certificate_serial, certificate_pem,
                             certificate_not_after, enrollment, join_token_id, enrolled_by, last_seen_at,
                             created_at, updated_at)
        SELECT r.id, ${tenantId}, r.display_name, r.os_type, r.os_version, r.join_type, 'active',
               r.attestation_level, r.csr_pem, r.transport_public_key, r.transport_key_thumbprint,
               decode(r.device_key_spki_hex, 'hex'), r.device_key_thumbprint, r.certificate_serial, r.certificate_pem,
               r.not_after, r.enrollment, r.join_token_id, r.enrolled_by, r.created_at, r.created_at,
               r.created_at
          FROM req r, gate WHERE r.ord <= gate.admitted
        RETURNING id
      ),
      certificate AS (
        INSERT INTO device_certificates (serial, tenant_id, device_id, not_before, not_after)
        SELECT r.certificate_serial, ${tenantId}::uuid, r.id, r.not_before, r.not_after
          FROM req r JOIN device d ON d.id = r.id
      ),
      event AS (
        INSERT INTO outbox_events (event_id, type, source, subject, tenant_id, time, data,
                                   traceparent, tracestate)
        SELECT r.event_id, r.event_type, r.event_source, r.event_subject, ${tenantId}, r.event_time,
               r.event_data, r.traceparent, r.tracestate
          FROM req r JOIN device d ON d.id = r.id ORDER BY r.ord
      )
      SELECT COALESCE((SELECT admitted FROM gate), 0)::int AS admitted,
             EXISTS (SELECT 1 FROM policy) AS policy_held`;
    const admitted = result?.admitted ?? 0;
    return batch.map((_, i) =>
      i < admitted ? 'stored' : result?.policy_held ? 'not_admitted' : 'policy_changed',
    );
  }
}

function samePolicy(a: CheckedRegistration['policy'], b: CheckedRegistration['policy']): boolean {
  return (
    a === b ||
    (a.requireTpm === b.requireTpm &&
      a.certificateValidityDays === b.certificateValidityDays &&
      a.tpmRootsPem.length === b.tpmRootsPem.length &&
      a.tpmRootsPem.every((pem, i) => pem === b.tpmRootsPem[i]))
  );
}
