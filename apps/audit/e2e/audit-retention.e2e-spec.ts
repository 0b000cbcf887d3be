/**
 * Retention: a tenant's expired records are deleted only up to a signed
 * checkpoint, and verification afterwards starts from that checkpoint — in the
 * service (VerifyChain) and in an export checked by tools/audit-verify.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, REPO_ROOT, TMP_DIR } from '@latchkey/testing';
import { AuditHarness } from './audit-harness';

const run = promisify(execFile);
const h = new AuditHarness('retention');

beforeAll(() => h.setUp());
afterAll(() => h.tearDown());

it('deletes expired records only up to a checkpoint; verification starts from it', async () => {
  const audit = await h.startAudit('a', {
    AUDIT_CHECKPOINT_EVERY: '5',
    AUDIT_CHECKPOINT_INTERVAL_MS: '600000',
    AUDIT_RETENTION_INTERVAL_MS: '1000',
  });
  const t = randomUUID();
  const old = new Date(Date.now() - 40 * 86_400_000);
  // seq 1..12 are 40 days old, 13..15 are new; checkpoints at 5, 10, 15.
  await h.produce([
    ...Array.from({ length: 12 }, () => h.deviceRegistered(t, { time: old })),
    ...Array.from({ length: 3 }, () => h.deviceRegistered(t)),
  ]);
  await eventually(async () => ((await h.count(t)) === 15 ? true : undefined), {
    what: '15 records',
  });
  const token = await h.token(t, ['admin']);
  const put = await fetch(`${audit.http}/v1/tenants/${t}/audit-retention`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ retentionDays: 30 }),
  });
  expect(put.status).toBe(200);
  // 11 and 12 are expired too, but no checkpoint covers them without also covering 13.
  await eventually(async () => ((await h.count(t)) === 5 ? true : undefined), {
    what: 'records 1..10 deleted',
  });
  const rows = await h.records(t);
  expect(rows.map((r) => r.seq)).toEqual(['11', '12', '13', '14', '15']);

  const client = h.client(audit);
  try {
    const v = await client.verifyChain!({ tenantId: t }, await h.metadata(t));
    expect(v).toMatchObject({ ok: true, fromSeq: '11', toSeq: '15', recordsVerified: '5' });
    expect(Number(v.checkpointsVerified)).toBe(2); // the anchor at 10, and 15
  } finally {
    client.close();
  }

  const res = await fetch(`${audit.http}/v1/tenants/${t}/audit-events/export`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = await res.text();
  const types = body
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; seq: number })
    .map((l) => `${l.type.split('.')[3]}:${l.seq}`);
  expect(types).toEqual([
    'checkpoint:10',
    'record:11',
    'record:12',
    'record:13',
    'record:14',
    'record:15',
    'checkpoint:15',
  ]);
  const file = join(TMP_DIR, `retention-${h.id}.ndjson`);
  writeFileSync(file, body);
  const { stdout } = await run(process.execPath, [
    join(REPO_ROOT, 'tools/audit-verify/audit-verify.mjs'),
    '--ndjson',
    file,
    '--keys',
    `${audit.http}/.well-known/audit-keys.json`,
  ]);
  expect(stdout).toContain(`ok      ${t}  seq 11..15  5 records, 2 signed checkpoints`);
  expect(stdout).toContain('anchored by the signed checkpoint at 10');
});

it('refuses a retention policy from a non-admin or for another tenant', async () => {
  const audit = h.instances[0]!;
  const t = randomUUID();
  const soc = await fetch(`${audit.http}/v1/tenants/${t}/audit-retention`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${await h.token(t, ['soc'])}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ retentionDays: 1 }),
  });
  expect(soc.status).toBe(403);
  const bad = await fetch(`${audit.http}/v1/tenants/${t}/audit-retention`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${await h.token(t, ['admin'])}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ retentionDays: 0 }),
  });
  expect(bad.status).toBe(400);
});
