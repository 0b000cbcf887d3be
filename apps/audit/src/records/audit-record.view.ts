/** The wire shape of an audit record (gRPC message, HTTP JSON and NDJSON lines). */
import { auditV1, fromTimestamp, toTimestamp } from '@latchkey/contracts';
import { assertTenantAccess, type Principal } from '@latchkey/service-kit';
import type { AuditCheckpoint, AuditRecord } from '../generated/prisma/client';
import type { AuditFilter } from './audit-query.service';

export function toProtoRecord(r: AuditRecord): auditV1.AuditRecord {
  return {
    eventId: r.eventId,
    tenantId: r.tenantId,
    eventType: r.eventType,
    source: r.source,
    subject: r.subject,
    time: toTimestamp(r.time),
    traceId: r.traceId ?? '',
    seq: r.seq.toString(),
    dataJson: JSON.stringify(r.data),
    recordJson: JSON.stringify(r.record),
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

/**
 * One NDJSON export line: the same fields as the SOC stream's record events
 * (tenant_id, seq, prev_hash, hash, record), so tools/audit-verify reads both.
 */
export function toExportLine(r: AuditRecord): string {
  return `${JSON.stringify({
    type: 'dev.latchkey.audit.record.v1',
    tenant_id: r.tenantId,
    seq: Number(r.seq),
    prev_hash: r.prevHash,
    hash: r.hash,
    record: r.record,
  })}\n`;
}

/** One NDJSON export line for a checkpoint: the SOC stream's checkpoint event data. */
export function toCheckpointLine(c: AuditCheckpoint): string {
  return `${JSON.stringify({
    type: 'dev.latchkey.audit.checkpoint.v1',
    tenant_id: c.tenantId,
    seq: Number(c.seq),
    hash: c.hash,
    time: c.time.toISOString(),
    kid: c.kid,
    alg: 'EdDSA',
    signature: c.signature,
  })}\n`;
}

/** The tenant a request acts on: the token's, or the one asked for if the token grants it. */
export function tenantFor(principal: Principal, requested?: string): string {
  if (!requested) return principal.tenantId;
  assertTenantAccess(principal, requested);
  return requested;
}

const OUTCOMES: Record<string, AuditFilter['outcome']> = {
  OUTCOME_SUCCESS: 'success',
  OUTCOME_FAILURE: 'failure',
};

/** The proto filter as the query service's filter (unset proto fields become absent). */
export function filterFromProto(
  f: auditV1.AuditEventFilter | null | undefined,
  top: { eventType?: string; subject?: string } = {},
): Record<string, unknown> {
  const s = (v?: string) => v || undefined;
  return {
    eventType: s(top.eventType) ?? s(f?.eventType),
    subject: s(top.subject) ?? s(f?.subject),
    startTime: f?.startTime ? fromTimestamp(f.startTime) : undefined,
    endTime: f?.endTime ? fromTimestamp(f.endTime) : undefined,
    classUid: f?.classUid || undefined,
    activityId: f?.activityId || undefined,
    outcome: OUTCOMES[String(f?.outcome)],
    user: s(f?.user),
    deviceId: s(f?.deviceId),
    credentialId: s(f?.credentialId),
    reason: s(f?.reason),
  };
}

/** HTTP query parameters as the query service's filter. */
export function filterFromQuery(q: Record<string, string | undefined>): Record<string, unknown> {
  const num = (v?: string) => (v === undefined || v === '' ? undefined : Number(v));
  const date = (v?: string) => (v ? new Date(v) : undefined);
  return {
    eventType: q.eventType || undefined,
    subject: q.subject || undefined,
    startTime: date(q.startTime),
    endTime: date(q.endTime),
    classUid: num(q.classUid),
    activityId: num(q.activityId),
    outcome: q.outcome || undefined,
    user: q.user || undefined,
    deviceId: q.deviceId || undefined,
    credentialId: q.credentialId || undefined,
    reason: q.reason || undefined,
  };
}

/** Drops undefined entries so that `.strict()` filters see only what was given. */
export function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
