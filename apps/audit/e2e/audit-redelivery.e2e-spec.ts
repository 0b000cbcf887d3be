/**
 * Crashes and concurrency against real Kafka and PostgreSQL: an audit instance
 * killed mid-batch and restarted stores every event exactly once; two instances
 * in one consumer group, writing the same tenants' chains, never fork them.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { canonicalize } from 'json-canonicalize';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { eventually, KAFKA_BROKERS, REPO_ROOT } from '@latchkey/testing';
import { AuditHarness } from './audit-harness';

const run = promisify(execFile);

async function expectIntactChain(h: AuditHarness, tenantId: string, n: number): Promise<void> {
  const rows = await h.records(tenantId);
  expect(rows).toHaveLength(n);
  expect(new Set(rows.map((r) => r.event_id)).size).toBe(n);
  let prev = '0'.repeat(64);
  rows.forEach((r, i) => {
    expect(r.seq).toBe(String(i + 1));
    expect(r.prev_hash).toBe(prev);
    const hash = createHash('sha256')
      .update(Buffer.from(prev, 'hex'))
      .update(canonicalize(r.record))
      .digest('hex');
    expect(r.hash).toBe(hash);
    prev = r.hash;
  });
}

describe('an audit instance killed mid-batch and restarted', () => {
  const h = new AuditHarness('redelivery');
  beforeAll(() => h.setUp());
  afterAll(() => h.tearDown());

  it('stores no duplicate and loses nothing', async () => {
    const tenants = [randomUUID(), randomUUID(), randomUUID()];
    const N = 6000;
    const events = Array.from({ length: N }, (_, i) => h.deviceRegistered(tenants[i % 3]!));
    await h.produce(events);
    // Small fetches, so that the kill lands between batches of one run.
    const env = {
      AUDIT_PARTITIONS_CONCURRENCY: '1',
      AUDIT_FETCH_MAX_BYTES_PER_PARTITION: String(64 * 1024),
    };
    const first = await h.startAudit('first', env);
    await eventually(
      async () => {
        const n = await h.count();
        return n > 0 && n < N ? n : undefined;
      },
      { what: 'some but not all records stored', intervalMs: 20, timeoutMs: 60_000 },
    );
    await first.kill(); // SIGKILL: offsets of the batch in flight are not committed
    const atKill = await h.count();
    expect(atKill).toBeLessThan(N);
    await h.startAudit('second', env);
    await eventually(async () => ((await h.count()) >= N ? true : undefined), {
      what: `all ${N} records`,
      timeoutMs: 90_000,
    });
    await new Promise((r) => setTimeout(r, 2000)); // any late redelivery
    expect(await h.count()).toBe(N);
    for (const t of tenants) await expectIntactChain(h, t, N / 3);

    // The SOC stream survived the crash too (at-least-once): read straight from Kafka.
    const second = h.instances[1]!;
    const out = await eventually(
      async () => {
        const r = await run(process.execPath, [
          join(REPO_ROOT, 'tools/audit-verify/audit-verify.mjs'),
          '--brokers',
          KAFKA_BROKERS,
          '--topic',
          h.streamTopic,
          '--keys',
          `${second.http}/.well-known/audit-keys.json`,
        ]).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
        return tenants.every((t) => r.stdout.includes(`ok      ${t}  seq 1..${N / 3} `))
          ? r.stdout
          : undefined;
      },
      { what: 'the whole stream verified', timeoutMs: 60_000, intervalMs: 2000 },
    );
    expect(out).toContain('VERIFIED');
  });
});

describe('two audit instances in one consumer group', () => {
  // Two topics: one tenant's events land on partitions owned by different instances,
  // so both instances append to the same chains at the same time.
  const h = new AuditHarness('fork', { topicCount: 2 });
  beforeAll(() => h.setUp());
  afterAll(() => h.tearDown());

  it('never fork a chain', async () => {
    const tenants = [randomUUID(), randomUUID()];
    await Promise.all([h.startAudit('one'), h.startAudit('two')]);
    // Both instances own partitions of both topics (otherwise this test would prove nothing).
    const admin = new Kafka({ brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await eventually(
        async () => {
          const { groups } = await admin.describeGroups([h.group]);
          const members = groups[0]?.members ?? [];
          return groups[0]?.state === 'Stable' &&
            members.length === 2 &&
            members.every((m) => {
              const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
              return Object.values(a?.assignment ?? {}).some((p) => p.length > 0);
            })
            ? true
            : undefined;
        },
        { what: 'a stable group of two members with partitions', timeoutMs: 60_000 },
      );
    } finally {
      await admin.disconnect();
    }
    const N = 4000;
    const events = Array.from({ length: N }, (_, i) => h.deviceRegistered(tenants[i % 2]!));
    await h.produce(events, (i) => Math.floor(i / 2) % 2);
    await eventually(async () => ((await h.count()) >= N ? true : undefined), {
      what: `all ${N} records`,
      timeoutMs: 90_000,
    });
    for (const t of tenants) await expectIntactChain(h, t, N / 2);
    const client = h.client(h.instances[0]!);
    try {
      for (const t of tenants) {
        const v = await client.verifyChain!({ tenantId: t }, await h.metadata(t));
        expect(v).toMatchObject({ ok: true, recordsVerified: String(N / 2) });
      }
    } finally {
      client.close();
    }
  });
});
