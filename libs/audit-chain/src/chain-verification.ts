/**
 * Verification of latchkey audit hash chains and signed checkpoints from the
 * published rules only (no database, no service code): shared by
 * tools/audit-verify and the device agent's `audit verify`.
 *
 *   hash      = SHA-256(prev_hash bytes ‖ UTF-8 of RFC 8785 JCS(record)), lowercase hex;
 *               prev_hash of seq 1 is 64 zeros; seq is gapless per tenant and equals
 *               record.metadata.sequence; record.metadata.tenant_uid is the tenant.
 *   signature = Ed25519 (base64url) over JCS({hash, kid, seq, tenant_id, time}), with the
 *               key `kid` of the audit service's /.well-known/audit-keys.json.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';

export const AUDIT_RECORD_TYPE = 'dev.latchkey.audit.record.v1';
export const AUDIT_CHECKPOINT_TYPE = 'dev.latchkey.audit.checkpoint.v1';
const ZERO = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

export interface ChainRecord {
  tenant_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
  record: { metadata?: { sequence?: unknown; tenant_uid?: unknown } } & Record<string, unknown>;
}

export interface ChainCheckpoint {
  tenant_id: string;
  seq: number;
  hash: string;
  time: string;
  kid: string;
  signature: string;
}

export type ChainItem =
  { kind: 'record'; data: ChainRecord } | { kind: 'checkpoint'; data: ChainCheckpoint };

export interface TenantVerification {
  tenant: string;
  ok: boolean;
  records: number;
  checkpoints: number;
  fromSeq: number;
  toSeq: number;
  headHash: string;
  notes: string[];
  firstInvalidSeq?: number;
  reason?: string;
}

export type AuditKeys = Map<string, KeyObject>;

/** One stream item from a kcat -J envelope of latchkey.audit.v1 (undefined for other event types). */
export function chainItemFromKcat(line: string): ChainItem | undefined {
  const env = JSON.parse(line) as {
    key?: string | null;
    headers?: string[] | Record<string, string>;
    payload: string;
  };
  const headers: Record<string, string> = {};
  const h = env.headers ?? [];
  if (Array.isArray(h)) for (let i = 0; i + 1 < h.length; i += 2) headers[h[i]!] = h[i + 1]!;
  else Object.assign(headers, h);
  const type = headers.ce_type;
  if (type !== AUDIT_RECORD_TYPE && type !== AUDIT_CHECKPOINT_TYPE) return undefined;
  const data = JSON.parse(env.payload) as ChainRecord & ChainCheckpoint;
  if (env.key != null && env.key !== data.tenant_id)
    throw new Error(`message key ${env.key} is not the tenant ${data.tenant_id}`);
  if (headers.ce_tenantid && headers.ce_tenantid !== data.tenant_id)
    throw new Error(`ce_tenantid ${headers.ce_tenantid} is not the tenant ${data.tenant_id}`);
  return type === AUDIT_RECORD_TYPE ? { kind: 'record', data } : { kind: 'checkpoint', data };
}

/** One item of an NDJSON export (GET /v1/tenants/<tenant>/audit-events/export). */
export function chainItemFromNdjson(line: string): ChainItem | undefined {
  const parsed = JSON.parse(line) as Record<string, unknown>;
  const type = (parsed.type as string | undefined) ?? AUDIT_RECORD_TYPE;
  if (type !== AUDIT_RECORD_TYPE && type !== AUDIT_CHECKPOINT_TYPE) return undefined;
  const rest = { ...parsed };
  delete rest.type;
  return type === AUDIT_RECORD_TYPE
    ? { kind: 'record', data: rest as unknown as ChainRecord }
    : { kind: 'checkpoint', data: rest as unknown as ChainCheckpoint };
}

/** The Ed25519 keys of an audit-keys.json JWKS, by kid. */
export function auditKeysFromJwks(text: string): AuditKeys {
  const keys: AuditKeys = new Map();
  const jwks = JSON.parse(text) as { keys?: Record<string, string>[] };
  for (const jwk of jwks.keys ?? []) {
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.kid) continue;
    keys.set(
      jwk.kid,
      createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' }),
    );
  }
  return keys;
}

export function chainHash(prev: string, record: unknown): string {
  return createHash('sha256')
    .update(Buffer.from(prev, 'hex'))
    .update(canonicalize(record), 'utf8')
    .digest('hex');
}

function checkSignature(keys: AuditKeys, c: ChainCheckpoint): string | undefined {
  const key = keys.get(c.kid);
  if (!key) return 'CHECKPOINT_UNKNOWN_KEY';
  const payload = canonicalize({
    hash: c.hash,
    kid: c.kid,
    seq: c.seq,
    tenant_id: c.tenant_id,
    time: c.time,
  });
  const sig = Buffer.from(String(c.signature), 'base64url');
  return verify(null, Buffer.from(payload, 'utf8'), key, sig)
    ? undefined
    : 'CHECKPOINT_SIGNATURE_INVALID';
}

/** Verifies one tenant's records and checkpoints (keyed by seq). */
export function verifyTenant(
  tenant: string,
  records: Map<number, ChainRecord>,
  checkpoints: Map<number, ChainCheckpoint>,
  keys: AuditKeys,
  { allowPartial = false }: { allowPartial?: boolean } = {},
): TenantVerification {
  const out: TenantVerification = {
    tenant,
    ok: true,
    records: 0,
    checkpoints: 0,
    fromSeq: 0,
    toSeq: 0,
    headHash: '',
    notes: [],
  };
  const faults: { seq: number; reason: string }[] = [];
  const bad = (seq: number, reason: string) => faults.push({ seq, reason });
  const seqs = [...records.keys()].sort((a, b) => a - b);
  const cps = [...checkpoints.values()].sort((a, b) => a.seq - b.seq);
  if (seqs.length) {
    const first = seqs[0]!;
    out.fromSeq = first;
    let prev: string | undefined;
    if (first === 1) prev = ZERO;
    else {
      const anchor = checkpoints.get(first - 1);
      if (anchor) {
        const why = checkSignature(keys, anchor);
        if (why) bad(anchor.seq, why);
        else {
          prev = anchor.hash;
          out.checkpoints++;
          out.notes.push(
            `starts at seq ${first}, anchored by the signed checkpoint at ${first - 1}`,
          );
        }
      } else if (allowPartial) {
        out.notes.push(
          `starts at seq ${first} without a signed anchor: its prev_hash is taken on trust`,
        );
      } else bad(first, 'ANCHOR_MISSING');
    }
    let expected = first;
    for (const seq of seqs) {
      if (faults.length) break;
      const r = records.get(seq)!;
      if (seq !== expected) {
        bad(expected, 'SEQ_GAP');
        break;
      }
      const md = r.record?.metadata ?? {};
      if (md.sequence !== seq || md.tenant_uid !== tenant) {
        bad(seq, 'RECORD_MISMATCH');
        break;
      }
      if (!HEX64.test(r.prev_hash) || (prev !== undefined && r.prev_hash !== prev)) {
        bad(seq, 'PREV_HASH_MISMATCH');
        break;
      }
      if (chainHash(r.prev_hash, r.record) !== r.hash) {
        bad(seq, 'HASH_MISMATCH');
        break;
      }
      prev = r.hash;
      out.records++;
      out.toSeq = seq;
      out.headHash = r.hash;
      expected = seq + 1;
    }
  }
  for (const c of cps) {
    if (c.seq === out.fromSeq - 1) continue; // the anchor, checked above
    const why = checkSignature(keys, c);
    if (why) {
      bad(c.seq, why);
      continue;
    }
    const r = records.get(c.seq);
    if (!r) {
      if (c.seq > out.toSeq && !faults.length) bad(out.toSeq + 1, 'RECORDS_MISSING');
      continue;
    }
    if (r.hash !== c.hash) bad(c.seq, 'CHECKPOINT_MISMATCH');
    else out.checkpoints++;
  }
  const lastSigned = cps.length ? cps[cps.length - 1]!.seq : 0;
  if (out.toSeq > lastSigned)
    out.notes.push(`seq ${lastSigned + 1}..${out.toSeq} not yet covered by a checkpoint`);
  if (faults.length) {
    const f = faults.reduce((a, b) => (b.seq < a.seq ? b : a));
    Object.assign(out, { ok: false, firstInvalidSeq: f.seq, reason: f.reason });
  }
  return out;
}

/**
 * Collects chain items per tenant and verifies every tenant. At-least-once
 * delivery repeats items (fine); the same seq with different content is a fork.
 */
export class ChainCollector {
  private readonly tenants = new Map<
    string,
    { records: Map<number, ChainRecord>; checkpoints: Map<number, ChainCheckpoint> }
  >();
  private readonly conflicts: { tenant: string; seq: number; kind: string }[] = [];

  constructor(private readonly onlyTenant?: string) {}

  /** Adds one item; throws for an item without a positive integer seq. */
  add(item: ChainItem): void {
    const d = item.data;
    if (this.onlyTenant && d.tenant_id !== this.onlyTenant) return;
    if (!Number.isSafeInteger(d.seq) || d.seq < 1) throw new Error('seq is not a positive integer');
    const t = this.tenants.get(d.tenant_id) ?? { records: new Map(), checkpoints: new Map() };
    this.tenants.set(d.tenant_id, t);
    const into: Map<number, unknown> = item.kind === 'record' ? t.records : t.checkpoints;
    const seen = into.get(d.seq);
    if (seen && canonicalize(seen) !== canonicalize(d))
      this.conflicts.push({ tenant: d.tenant_id, seq: d.seq, kind: item.kind });
    else into.set(d.seq, d);
  }

  verify(keys: AuditKeys, options: { allowPartial?: boolean } = {}): TenantVerification[] {
    const results = [...this.tenants].map(([tenant, t]) =>
      verifyTenant(tenant, t.records, t.checkpoints, keys, options),
    );
    for (const c of this.conflicts) {
      const r = results.find((x) => x.tenant === c.tenant);
      if (r && (r.ok || c.seq < (r.firstInvalidSeq ?? Infinity)))
        Object.assign(r, {
          ok: false,
          firstInvalidSeq: c.seq,
          reason: `FORK (two different ${c.kind}s)`,
        });
    }
    return results;
  }
}

/** The human-readable report audit-verify prints (one block per tenant, then the verdict). */
export function formatVerification(results: TenantVerification[]): string {
  let text = '';
  for (const r of results) {
    const head = r.ok
      ? `ok      ${r.tenant}  seq ${r.fromSeq}..${r.toSeq}  ${r.records} records, ${r.checkpoints} signed checkpoints`
      : `INVALID ${r.tenant}  first invalid seq ${r.firstInvalidSeq}: ${r.reason}`;
    text += `${head}\n${r.notes.map((x) => `        ${x}\n`).join('')}`;
  }
  if (!results.length) text += 'no audit records found\n';
  const ok = results.length > 0 && results.every((r) => r.ok);
  return text + (ok ? 'VERIFIED\n' : 'NOT VERIFIED\n');
}
