/**
 * Stores checked registrations: registrations that wait on the same enrollment
 * authorization (one join token, or user tokens of one tenant) are written
 * together by one SQL statement that takes their join-token uses, inserts the
 * devices and their certificates and writes their events to the outbox, all or
 * nothing. One commit (one WAL flush) and one join-token row lock per batch,
 * never held across a round trip to this process: with a shared N-use token
 * the registrations queue here instead of on that row's lock. The statement runs
 * on the Prisma client's own pg.Pool (PG_POOL): no query compiler on the hot path.
 */
import { Inject, Injectable } from '@nestjs/common';
import { type OutboxRecord } from '@latchkey/events';
import { Coalescer, PG_POOL } from '@latchkey/service-kit';
import type { Pool } from 'pg';
import { type Device, type Tenant } from '../generated/prisma/client';

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

@Injectable()
export class RegistrationWriter {
  /**
   * Registrations waiting, per enrollment authorization (token hash or tenant); one statement
   * checks one policy snapshot, so a batch holds registrations checked against the same policy.
   */
  private readonly batches = new Coalescer<CheckedRegistration, WriteOutcome>(
    (batch) => this.store(batch),
    { maxBatch: 100, sameBatch: (a, b) => samePolicy(a.policy, b.policy) },
  );

  constructor(@Inject(PG_POOL) private readonly pg: Pool) {}

  /** Stores the registration when its join token (if any) still admits it and the policy holds. */
  write(registration: CheckedRegistration): Promise<WriteOutcome> {
    const { tenantId } = registration.device;
    const key = registration.joinTokenHash
      ? `${tenantId}:${registration.joinTokenHash.toString('base64')}`
      : tenantId;
    return this.batches.submit(registration, key);
  }

  /** One statement for registrations of one tenant, one authorization and one policy snapshot. */
  private async store(batch: CheckedRegistration[]): Promise<WriteOutcome[]> {
    const { device: first, policy, joinTokenHash } = batch[0]!;
    const { tenantId } = first;
    const column = (value: (r: CheckedRegistration) => string | null) => batch.map(value);
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    const { rows } = await this.pg.query<{ admitted: number; policy_held: boolean }>({
      name: 'registration.store',
      text: STORE,
      values: [
        column((r) => r.device.id),
        column((r) => r.device.displayName),
        column((r) => r.device.osType),
        column((r) => r.device.osVersion),
        column((r) => r.device.joinType),
        column((r) => r.device.attestationLevel),
        column((r) => r.device.csrPem),
        column((r) => r.device.transportPublicKey),
        column((r) => r.device.transportKeyThumbprint),
        column((r) =>
          r.device.deviceKeySpki ? Buffer.from(r.device.deviceKeySpki).toString('hex') : null,
        ),
        column((r) => r.device.deviceKeyThumbprint),
        column((r) => r.device.certificateSerial),
        column((r) => r.device.certificatePem),
        column((r) => iso(r.certificateNotBefore)),
        column((r) => iso(r.device.certificateNotAfter)),
        column((r) => r.device.enrollment),
        column((r) => r.device.joinTokenId),
        column((r) => r.device.enrolledBy),
        column((r) => iso(r.device.createdAt)),
        column((r) => r.event.eventId),
        column((r) => r.event.type),
        column((r) => r.event.source),
        column((r) => r.event.subject),
        column((r) => iso(r.event.time)),
        column((r) => JSON.stringify(r.event.data)),
        column((r) => r.event.traceparent),
        column((r) => r.event.tracestate),
        tenantId,
        policy.requireTpm,
        policy.certificateValidityDays,
        policy.tpmRootsPem,
        joinTokenHash !== undefined,
        joinTokenHash ?? Buffer.alloc(0),
        first.createdAt,
        batch.length,
      ],
    });
    const result = rows[0];
    const admitted = result?.admitted ?? 0;
    return batch.map((_, i) =>
      i < admitted ? 'stored' : result?.policy_held ? 'not_admitted' : 'policy_changed',
    );
  }
}

/**
 * The statement that stores a batch: one array per column ($1-$27, as text: the casts are in
 * the statement), then the tenant ($28), the policy snapshot ($29-$31), the join token ($32:
 * whether there is one, $33: its hash), the time ($34) and the batch size ($35). A named
 * (prepared) statement: parsed and planned once per connection.
 * prev locks the token row (after any concurrent batch commits) and reads its count; the
 * UPDATE takes as many uses as are left, up to the batch size; gate says how many are admitted.
 */
const STORE = `
  WITH req AS (
    SELECT * FROM unnest(
      $1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
      $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
      $14::timestamptz[], $15::timestamptz[], $16::text[], $17::uuid[], $18::text[],
      $19::timestamptz[], $20::uuid[], $21::text[], $22::text[], $23::text[],
      $24::timestamptz[], $25::jsonb[], $26::text[], $27::text[]
    ) WITH ORDINALITY AS r (id, display_name, os_type, os_version, join_type, attestation_level,
      csr_pem, transport_public_key, transport_key_thumbprint, device_key_spki_hex,
      device_key_thumbprint, certificate_serial, certificate_pem, not_before, not_after,
      enrollment, join_token_id, enrolled_by, created_at, event_id, event_type, event_source,
      event_subject, event_time, event_data, traceparent, tracestate, ord)
  ),
  policy AS (
    SELECT 1 FROM tenants
     WHERE id = $28::text::uuid AND require_tpm = $29::boolean
       AND certificate_validity_days = $30::int
       AND COALESCE(tpm_roots_pem, ARRAY[]::text[]) = $31::text[]
  ),
  prev AS (
    SELECT id, use_count FROM join_tokens
     WHERE $32::boolean AND token_hash = $33::bytea
       AND tenant_id = $28::text::uuid AND revoked_at IS NULL AND expires_at > $34::timestamptz
       AND use_count < max_uses AND EXISTS (SELECT 1 FROM policy)
     FOR UPDATE
  ),
  token AS (
    UPDATE join_tokens j SET use_count = j.use_count + LEAST($35::int, j.max_uses - prev.use_count)
      FROM prev WHERE j.id = prev.id
    RETURNING LEAST($35::int, j.max_uses - prev.use_count) AS admitted
  ),
  gate AS (
    SELECT admitted FROM token
    UNION ALL
    SELECT $35::int WHERE NOT $32::boolean AND EXISTS (SELECT 1 FROM policy)
  ),
  device AS (
    INSERT INTO devices (id, tenant_id, display_name, os_type, os_version, join_type, status,
                         attestation_level, csr_pem, transport_public_key, transport_key_thumbprint,
                         device_key_spki, device_key_thumbprint, certificate_serial, certificate_pem,
                         certificate_not_after, enrollment, join_token_id, enrolled_by, last_seen_at,
                         created_at, updated_at)
    SELECT r.id, $28::text, r.display_name, r.os_type, r.os_version, r.join_type, 'active',
           r.attestation_level, r.csr_pem, r.transport_public_key, r.transport_key_thumbprint,
           decode(r.device_key_spki_hex, 'hex'), r.device_key_thumbprint, r.certificate_serial,
           r.certificate_pem, r.not_after, r.enrollment, r.join_token_id, r.enrolled_by,
           r.created_at, r.created_at, r.created_at
      FROM req r, gate WHERE r.ord <= gate.admitted
    RETURNING id
  ),
  certificate AS (
    INSERT INTO device_certificates (serial, tenant_id, device_id, not_before, not_after)
    SELECT r.certificate_serial, $28::text::uuid, r.id, r.not_before, r.not_after
      FROM req r JOIN device d ON d.id = r.id
  ),
  event AS (
    INSERT INTO outbox_events (event_id, type, source, subject, tenant_id, time, data,
                               traceparent, tracestate)
    SELECT r.event_id, r.event_type, r.event_source, r.event_subject, $28::text, r.event_time,
           r.event_data, r.traceparent, r.tracestate
      FROM req r JOIN device d ON d.id = r.id ORDER BY r.ord
  )
  SELECT COALESCE((SELECT admitted FROM gate), 0)::int AS admitted,
         EXISTS (SELECT 1 FROM policy) AS policy_held`;

function samePolicy(a: CheckedRegistration['policy'], b: CheckedRegistration['policy']): boolean {
  return (
    a === b ||
    (a.requireTpm === b.requireTpm &&
      a.certificateValidityDays === b.certificateValidityDays &&
      a.tpmRootsPem.length === b.tpmRootsPem.length &&
      a.tpmRootsPem.every((pem, i) => pem === b.tpmRootsPem[i]))
  );
}
