/**
 * The SOC stream and the query API: every chained record and checkpoint on the
 * stream topic in chain order, verified by tools/audit-verify from a kcat read;
 * the published audit key; query filters, cursor and the streaming NDJSON export.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import {
  currentKeyEncryptionKeyId,
  eventually,
  type ExtraService,
  KAFKA_BROKERS,
  REPO_ROOT,
  TMP_DIR,
  type UnaryClient,
} from '@latchkey/testing';
import { AuditHarness } from './audit-harness';

const run = promisify(execFile);
const VERIFY = join(REPO_ROOT, 'tools/audit-verify/audit-verify.mjs');

const h = new AuditHarness('stream');
let audit: ExtraService;
let client: UnaryClient;

beforeAll(async () => {
  await h.setUp();
  audit = await h.startAudit('a', { AUDIT_CHECKPOINT_EVERY: '10' });
  client = h.client(audit);
});
afterAll(async () => {
  client?.close();
  await h.tearDown();
});

async function kcat(topic: string, file: string, expectAtLeast: number): Promise<string[]> {
  return eventually(
    async () => {
      const { stdout } = await run(
        'kcat',
        ['-C', '-b', KAFKA_BROKERS, '-t', topic, '-e', '-J', '-q'],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      const lines = stdout.split('\n').filter(Boolean);
      if (lines.length < expectAtLeast) return undefined;
      writeFileSync(file, `${lines.join('\n')}\n`);
      return lines;
    },
    { what: `${expectAtLeast} messages on ${topic}`, timeoutMs: 60_000, intervalMs: 1000 },
  );
}

async function verify(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [VERIFY, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout + e.stderr };
  }
}

describe('the SOC stream', () => {
  const a = randomUUID();
  const b = randomUUID();
  const file = join(TMP_DIR, `stream-${h.id}.jsonl`);

  beforeAll(async () => {
    await h.produce(Array.from({ length: 30 }, (_, i) => h.deviceRegistered(i % 2 ? a : b)));
    await h.produce(Array.from({ length: 7 }, () => h.signInFailed(a)));
  });

  it('carries every record and checkpoint in chain order per tenant, keyed by tenant', async () => {
    // 37 records; checkpoints every 10 (a: 10, 20; b: 10) plus time-based ones.
    const lines = await kcat(h.streamTopic, file, 40);
    const items = lines.map(
      (l) =>
        JSON.parse(l) as {
          key: string;
          partition: number;
          headers: string[];
          payload: string;
        },
    );
    for (const t of [a, b]) {
      const mine = items.filter((m) => m.key === t);
      expect(new Set(mine.map((m) => m.partition)).size).toBe(1);
      const seqs = mine
        .filter((m) => m.headers.includes('dev.latchkey.audit.record.v1'))
        .map((m) => (JSON.parse(m.payload) as { seq: number }).seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(seqs.length).toBe(t === a ? 22 : 15);
      const checkpoints = mine.filter((m) =>
        m.headers.includes('dev.latchkey.audit.checkpoint.v1'),
      );
      expect(checkpoints.length).toBeGreaterThanOrEqual(1);
      // A checkpoint follows the record it signs.
      for (const c of checkpoints) {
        const seq = (JSON.parse(c.payload) as { seq: number }).seq;
        const at = mine.indexOf(c);
        const recordAt = mine.findIndex(
          (m) =>
            m.headers.includes('dev.latchkey.audit.record.v1') &&
            (JSON.parse(m.payload) as { seq: number }).seq === seq,
        );
        expect(recordAt).toBeLessThan(at);
      }
    }
  });

  it('read by kcat, verifies with tools/audit-verify and the published key', async () => {
    await kcat(h.streamTopic, file, 40);
    const res = await verify([
      '--kcat',
      file,
      '--keys',
      `${audit.http}/.well-known/audit-keys.json`,
    ]);
    expect(res.stdout).toMatch(/VERIFIED/);
    expect(res.stdout).toContain(`ok      ${a}`);
    expect(res.code).toBe(0);
  });

  it('fails verification when a record on the stream was altered, naming its seq', async () => {
    const lines = await kcat(h.streamTopic, file, 40);
    const tampered = lines.map((l) => {
      const m = JSON.parse(l) as { key: string; payload: string; headers: string[] };
      const p = JSON.parse(m.payload) as { seq: number; record: { message: string } };
      if (m.key === a && m.headers.includes('dev.latchkey.audit.record.v1') && p.seq === 5) {
        p.record.message = 'innocent';
        m.payload = JSON.stringify(p);
      }
      return JSON.stringify(m);
    });
    const bad = join(TMP_DIR, `stream-${h.id}-tampered.jsonl`);
    writeFileSync(bad, `${tampered.join('\n')}\n`);
    const res = await verify([
      '--kcat',
      bad,
      '--keys',
      `${audit.http}/.well-known/audit-keys.json`,
    ]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(`INVALID ${a}  first invalid seq 5: HASH_MISMATCH`);
  });

  it('publishes the Ed25519 audit key, and stores its private half only encrypted', async () => {
    const res = await fetch(`${audit.http}/.well-known/audit-keys.json`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: { kty: string; crv: string; kid: string }[] };
    expect(keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
    const [row] = await h.db.$queryRawUnsafe<{ private_key_enc: string }[]>(
      `SELECT private_key_enc FROM audit_signing_keys WHERE kid = $1`,
      keys[0]!.kid,
    );
    expect(row!.private_key_enc.startsWith(`kek1.${currentKeyEncryptionKeyId()}.`)).toBe(true);
    expect(row!.private_key_enc).not.toMatch(/MC4CAQAwBQYDK2Vw/); // no PKCS#8 Ed25519 DER in the clear
  });
});

describe('the query API', () => {
  const t = randomUUID();
  const user = randomUUID();

  beforeAll(async () => {
    await h.produce([
      ...Array.from({ length: 12 }, () => h.deviceRegistered(t)),
      h.signInFailed(t, 'bad_otp', user),
      h.signInFailed(t, 'user_locked', user),
      h.signInFailed(t, 'bad_otp'),
    ]);
    await eventually(async () => ((await h.count(t)) === 15 ? true : undefined), {
      what: 'the records',
    });
  });

  it('filters by class, outcome, user and reason, in chain order', async () => {
    const md = await h.metadata(t, ['soc']);
    const res = await client.queryAuditEvents!(
      { filter: { classUid: 3002, outcome: 'OUTCOME_FAILURE', user, reason: 'BAD_OTP' } },
      md,
    );
    const records = res.records as { seq: string; recordJson: string }[];
    expect(records).toHaveLength(1);
    expect(JSON.parse(records[0]!.recordJson)).toMatchObject({
      class_uid: 3002,
      activity_id: 1,
      type_uid: 300201,
      status_id: 2,
      status_code: 'BAD_OTP',
      user: { uid: user },
    });
    const window = await client.queryAuditEvents!(
      { filter: { startTime: { seconds: '0', nanos: 0 }, endTime: { seconds: '1', nanos: 0 } } },
      md,
    );
    expect(window.records).toEqual([]);
  });

  it('pages with a cursor in chain order', async () => {
    const md = await h.metadata(t, ['admin']);
    const seen: string[] = [];
    let pageToken = '';
    do {
      const res = await client.queryAuditEvents!({ pageSize: 4, pageToken }, md);
      seen.push(...(res.records as { seq: string }[]).map((r) => r.seq));
      pageToken = res.nextPageToken as string;
    } while (pageToken);
    expect(seen).toEqual(Array.from({ length: 15 }, (_, i) => String(i + 1)));
  });

  it('exports NDJSON over HTTP that audit-verify accepts', async () => {
    const token = await h.token(t, ['soc']);
    const res = await fetch(`${audit.http}/v1/tenants/${t}/audit-events/export`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const body = await res.text();
    const lines = body.trim().split('\n');
    // Unfiltered: the 15 records, each signed checkpoint right after the record it signs.
    const items = lines.map((l) => JSON.parse(l) as { type: string; seq: number });
    const kind = (i: { type: string }) => i.type.split('.')[3];
    expect(items.filter((i) => kind(i) === 'record').map((i) => i.seq)).toEqual(
      Array.from({ length: 15 }, (_, i) => i + 1),
    );
    items.forEach((item, i) => {
      if (kind(item) === 'checkpoint') expect(items[i - 1]).toMatchObject({ seq: item.seq });
    });
    expect(items.find((i) => kind(i) === 'checkpoint' && i.seq === 10)).toBeDefined();
    const file = join(TMP_DIR, `export-${h.id}.ndjson`);
    writeFileSync(file, body);
    const v = await verify([
      '--ndjson',
      file,
      '--keys',
      `${audit.http}/.well-known/audit-keys.json`,
    ]);
    expect(v.stdout).toContain(`ok      ${t}`);
    expect(v.code).toBe(0);
  });

  it('serves the same filters over HTTP and refuses another tenant or no token', async () => {
    const token = await h.token(t, ['soc']);
    const ok = await fetch(`${audit.http}/v1/tenants/${t}/audit-events?classUid=3004&pageSize=5`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await ok.json()) as { records: { recordJson: string }[]; nextPageToken: string };
    expect(body.records).toHaveLength(5);
    expect(body.nextPageToken).not.toBe('');
    const other = await fetch(`${audit.http}/v1/tenants/${randomUUID()}/audit-events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { reason: string }).reason).toBe('TENANT_MISMATCH');
    const none = await fetch(`${audit.http}/v1/tenants/${t}/audit-events`);
    expect(none.status).toBe(401);
    const err = await client.queryAuditEvents!({}).catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(status.UNAUTHENTICATED);
  });
});
