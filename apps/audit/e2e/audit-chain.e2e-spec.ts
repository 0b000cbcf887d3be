/**
 * The audit trail against real Kafka and PostgreSQL: hash chain, append-only
 * table, tamper detection by VerifyChain, the dead-letter topic.
 */
import { createHash, randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { canonicalize } from 'json-canonicalize';
import { eventually, type ExtraService, reasonOf, type UnaryClient } from '@latchkey/testing';
import { AuditHarness } from './audit-harness';

const h = new AuditHarness('chain');
let audit: ExtraService;
let client: UnaryClient;

beforeAll(async () => {
  await h.setUp();
  audit = await h.startAudit('a');
  client = h.client(audit);
});
afterAll(async () => {
  client?.close();
  await h.tearDown();
});

async function stored(tenantId: string, n: number) {
  return eventually(async () => ((await h.count(tenantId)) >= n ? true : undefined), {
    what: `${n} records of ${tenantId}`,
    timeoutMs: 60_000,
  });
}

describe('the per-tenant hash chain', () => {
  it('gives each tenant a gapless seq and hash = SHA-256(prev_hash ‖ JCS(record))', async () => {
    const a = randomUUID();
    const b = randomUUID();
    const events = Array.from({ length: 40 }, (_, i) =>
      i % 3 ? h.deviceRegistered(i % 2 ? a : b) : h.signInFailed(i % 2 ? a : b),
    );
    await h.produce(events);
    for (const t of [a, b]) {
      const n = events.filter((e) => e.tenantId === t).length;
      await stored(t, n);
      const rows = await h.records(t);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => String(i + 1)));
      let prev = '0'.repeat(64);
      for (const r of rows) {
        expect(r.prev_hash).toBe(prev);
        const expected = createHash('sha256')
          .update(Buffer.from(prev, 'hex'))
          .update(canonicalize(r.record), 'utf8')
          .digest('hex');
        expect(r.hash).toBe(expected);
        expect((r.record.metadata as { sequence: number }).sequence).toBe(Number(r.seq));
        prev = r.hash;
      }
    }
  });

  it('stores a redelivered event once', async () => {
    const t = randomUUID();
    const e = h.deviceRegistered(t);
    await h.produce([e, e]);
    await stored(t, 1);
    await h.produce([e]);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await h.count(t)).toBe(1);
  });
});

describe('the audit table is append-only in the database', () => {
  let tenant: string;
  beforeAll(async () => {
    tenant = randomUUID();
    await h.produce([h.deviceRegistered(tenant), h.deviceRegistered(tenant)]);
    await stored(tenant, 2);
  });

  it('refuses UPDATE', async () => {
    await expect(
      h.db.$executeRawUnsafe(
        `UPDATE audit_records SET subject = 'x' WHERE tenant_id = $1 AND seq = 1`,
        tenant,
      ),
    ).rejects.toMatchObject({ code: '23001', message: expect.stringMatching(/append-only/) });
  });

  it('refuses DELETE outside the retention job, and TRUNCATE', async () => {
    await expect(
      h.db.$executeRawUnsafe(`DELETE FROM audit_records WHERE tenant_id = $1`, tenant),
    ).rejects.toMatchObject({ code: '23001' });
    // Even a session that claims to be the retention job: no retention policy, no checkpoint rule met.
    await expect(
      h.db.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`SET LOCAL latchkey.audit_retention = 'on'`);
        await tx.$executeRawUnsafe(`DELETE FROM audit_records WHERE tenant_id = $1`, tenant);
      }),
    ).rejects.toMatchObject({ code: '23001' });
    await expect(h.db.$executeRawUnsafe(`TRUNCATE audit_records`)).rejects.toMatchObject({
      code: '23001',
    });
    expect(await h.count(tenant)).toBe(2);
  });
});

/** latchkey_audit_chain_verification_failures_total{reason} on audit's /metrics (0 when absent). */
async function verificationFailures(reason: string): Promise<number> {
  const text = await (await fetch(`${audit.http}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) =>
      l.startsWith(`latchkey_audit_chain_verification_failures_total{reason="${reason}"}`),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('VerifyChain', () => {
  it('reports ok for an untouched chain, with its checkpoints verified', async () => {
    const t = randomUUID();
    await h.produce(Array.from({ length: 60 }, () => h.deviceRegistered(t)));
    await stored(t, 60);
    const res = await client.verifyChain!({ tenantId: t }, await h.metadata(t));
    expect(res).toMatchObject({
      ok: true,
      firstInvalidSeq: '0',
      recordsVerified: '60',
      toSeq: '60',
    });
    expect(Number(res.checkpointsVerified)).toBeGreaterThanOrEqual(2); // every 25 records
  });

  it('finds a row changed by a superuser behind the service’s back, at its seq', async () => {
    const t = randomUUID();
    await h.produce(Array.from({ length: 30 }, () => h.deviceRegistered(t)));
    await stored(t, 30);
    // A superuser can switch triggers off for its session: the chain still tells.
    await h.db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SET LOCAL session_replication_role = replica`);
      await tx.$executeRawUnsafe(
        `UPDATE audit_records SET record = jsonb_set(record::jsonb, '{message}', '"nothing happened"')::json
          WHERE tenant_id = $1 AND seq = 17`,
        t,
      );
    });
    const res = await client.verifyChain!({ tenantId: t }, await h.metadata(t));
    expect(res).toMatchObject({ ok: false, firstInvalidSeq: '17', reason: 'HASH_MISMATCH' });
    // Re-hashing the changed row does not help: the next row no longer links to it.
    const [row] = await h.db.$queryRawUnsafe<{ record: object; prev_hash: string }[]>(
      `SELECT record, prev_hash FROM audit_records WHERE tenant_id = $1 AND seq = 17`,
      t,
    );
    const rehash = createHash('sha256')
      .update(Buffer.from(row!.prev_hash, 'hex'))
      .update(canonicalize(row!.record))
      .digest('hex');
    await h.db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SET LOCAL session_replication_role = replica`);
      await tx.$executeRawUnsafe(
        `UPDATE audit_records SET hash = $2 WHERE tenant_id = $1 AND seq = 17`,
        t,
        rehash,
      );
    });
    const again = await client.verifyChain!({ tenantId: t }, await h.metadata(t));
    expect(again).toMatchObject({ ok: false, firstInvalidSeq: '18', reason: 'PREV_HASH_MISMATCH' });
  });

  it('finds a deleted row as a gap at its seq', async () => {
    const t = randomUUID();
    await h.produce(Array.from({ length: 5 }, () => h.deviceRegistered(t)));
    await stored(t, 5);
    await h.db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SET LOCAL session_replication_role = replica`);
      await tx.$executeRawUnsafe(`DELETE FROM audit_records WHERE tenant_id = $1 AND seq = 3`, t);
    });
    const gapsBefore = await verificationFailures('SEQ_GAP');
    const res = await client.verifyChain!({ tenantId: t }, await h.metadata(t));
    expect(res).toMatchObject({ ok: false, firstInvalidSeq: '3', reason: 'SEQ_GAP' });
    // What the chart's LatchkeyAuditChainVerificationFailed alert watches.
    expect(await verificationFailures('SEQ_GAP')).toBe(gapsBefore + 1);
  });

  it('requires a token with the admin or soc role, for the token’s tenant', async () => {
    const t = randomUUID();
    const none = await client.verifyChain!({ tenantId: t }).catch((e: unknown) => e);
    expect((none as { code: number }).code).toBe(status.UNAUTHENTICATED);
    const user = await client.verifyChain!({ tenantId: t }, await h.metadata(t, ['user'])).catch(
      (e: unknown) => e,
    );
    expect(reasonOf(user)).toBe('ROLE_REQUIRED');
    const other = await client.verifyChain!(
      { tenantId: t },
      await h.metadata(randomUUID(), ['admin']),
    ).catch((e: unknown) => e);
    expect(reasonOf(other)).toBe('TENANT_MISMATCH');
  });
});

describe('events that cannot be recorded', () => {
  it('sends a malformed event to the dead-letter topic with its reason and original headers', async () => {
    const t = randomUUID();
    const e = h.deviceRegistered(t);
    await h.produceRaw({
      key: t,
      value: JSON.stringify({ ...(e.data as object), joinType: 'sideways' }),
      headers: {
        ce_specversion: '1.0',
        ce_id: e.id,
        ce_source: e.source,
        ce_type: e.type,
        ce_time: e.time.toISOString(),
        ce_subject: e.subject,
        ce_tenantid: t,
        'content-type': 'application/json',
      },
    });
    const dead = await eventually(
      async () => {
        const list = await h.readTopic(h.dlqTopic, { idleMs: 1000 });
        return list.find((m) => m.headers.ce_id === e.id);
      },
      { what: 'the dead letter', timeoutMs: 60_000 },
    );
    expect(dead.headers.latchkey_dlq_reason).toMatch(/^SCHEMA_VIOLATION: joinType/);
    expect(dead.headers.latchkey_dlq_topic).toBe(h.topics[0]);
    expect(dead.headers.ce_type).toBe(e.type);
    expect(dead.key).toBe(t);
    expect(await h.count(t)).toBe(0);
  });

  it('sends an event whose ce_id is not a UUID to the dead-letter topic, and goes on', async () => {
    const t = randomUUID();
    const bad = { ...h.deviceRegistered(t), id: 'not-a-uuid' };
    const good = h.deviceRegistered(t);
    await h.produce([bad, good]);
    await stored(t, 1);
    const dead = await eventually(
      async () => {
        const list = await h.readTopic(h.dlqTopic, { idleMs: 1000 });
        return list.find((m) => m.headers.ce_id === bad.id && m.key === t);
      },
      { what: 'the dead letter', timeoutMs: 60_000 },
    );
    expect(dead.headers.latchkey_dlq_reason).toBe('INVALID_ID: ce_id is not a UUID');
    const rows = await h.records(t);
    expect(rows.map((r) => r.event_id)).toEqual([good.id]);
  });

  it('sends an event that is not I-JSON (a lone surrogate) to the dead-letter topic, and goes on', async () => {
    const t = randomUUID();
    const bad = h.deviceRegistered(t, {}, { displayName: 'bad \ud800 name' });
    const good = h.deviceRegistered(t);
    await h.produce([bad, good]);
    await stored(t, 1);
    const dead = await eventually(
      async () => {
        const list = await h.readTopic(h.dlqTopic, { idleMs: 1000 });
        return list.find((m) => m.headers.ce_id === bad.id);
      },
      { what: 'the dead letter', timeoutMs: 60_000 },
    );
    expect(dead.headers.latchkey_dlq_reason).toMatch(
      /^NOT_CANONICALIZABLE: .*lone UTF-16 surrogate/,
    );
    const rows = await h.records(t);
    expect(rows.map((r) => r.event_id)).toEqual([good.id]);
  });
});
