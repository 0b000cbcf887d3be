#!/usr/bin/env node
// audit-verify: verifies latchkey audit hash chains and signed checkpoints with no
// database access and no latchkey code — only the published rules:
//
//   hash      = SHA-256(prev_hash bytes ‖ UTF-8 of RFC 8785 JCS(record)), lowercase hex;
//               prev_hash of seq 1 is 64 zeros; seq is gapless per tenant and equals
//               record.metadata.sequence; record.metadata.tenant_uid is the tenant.
//   signature = Ed25519 (base64url) over JCS({hash, kid, seq, tenant_id, time}), with the
//               key `kid` of the audit service's /.well-known/audit-keys.json.
//
// Input: the SOC stream (latchkey.audit.v1) as read by kcat's JSON envelope
//   kcat -C -b 127.0.0.1:9092 -t latchkey.audit.v1 -e -J > stream.jsonl
// or directly from Kafka (--brokers/--topic), or an NDJSON export
// (GET /v1/tenants/<tenant>/audit-events/export). Exit 0: everything verified;
// 1: a chain or a checkpoint does not verify; 2: usage or input error.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { canonicalize } from 'json-canonicalize';

const RECORD = 'dev.latchkey.audit.record.v1';
const CHECKPOINT = 'dev.latchkey.audit.checkpoint.v1';
const ZERO = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

const USAGE = `usage: audit-verify (--kcat <file|-> | --ndjson <file|-> | --brokers <host:port> --topic <topic>)
                    --keys <audit-keys.json URL or file> [--tenant <id>] [--allow-partial] [--json]
  --allow-partial  a chain may start after seq 1 without a signed anchor (its first
                   record's prev_hash is then taken on trust; reported as such)`;

function fail(message) {
  process.stderr.write(`audit-verify: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function* lines(path) {
  const input = path === '-' ? process.stdin : createReadStream(path);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line.trim()) yield line;
  }
}

/** One stream item {kind, tenant, data} from a kcat -J envelope. */
function fromKcat(line) {
  const env = JSON.parse(line);
  const headers = {};
  const h = env.headers ?? [];
  if (Array.isArray(h)) for (let i = 0; i + 1 < h.length; i += 2) headers[h[i]] = h[i + 1];
  else Object.assign(headers, h);
  const type = headers.ce_type;
  if (type !== RECORD && type !== CHECKPOINT) return undefined;
  const data = JSON.parse(env.payload);
  if (env.key != null && env.key !== data.tenant_id)
    throw new Error(`message key ${env.key} is not the tenant ${data.tenant_id}`);
  if (headers.ce_tenantid && headers.ce_tenantid !== data.tenant_id)
    throw new Error(`ce_tenantid ${headers.ce_tenantid} is not the tenant ${data.tenant_id}`);
  return { kind: type === RECORD ? 'record' : 'checkpoint', data };
}

function fromNdjson(line) {
  const data = JSON.parse(line);
  const type = data.type ?? RECORD;
  if (type !== RECORD && type !== CHECKPOINT) return undefined;
  const rest = { ...data };
  delete rest.type;
  return { kind: type === RECORD ? 'record' : 'checkpoint', data: rest };
}

async function* fromKafka(brokers, topic) {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({
    brokers: brokers.split(','),
    clientId: 'audit-verify',
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const target = new Map(ends.map((p) => [p.partition, BigInt(p.high)]));
  const pending = [...target].filter(([, high]) => high > 0n).map(([p]) => p);
  const items = [];
  if (pending.length) {
    const consumer = kafka.consumer({ groupId: `audit-verify-${process.pid}-${Date.now()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Set();
    await new Promise((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const headers = {};
            for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
            items.push({
              key: message.key?.toString() ?? null,
              headers,
              payload: message.value?.toString() ?? '',
            });
            if (BigInt(message.offset) + 1n >= target.get(partition)) done.add(partition);
            if (done.size === pending.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
  }
  for (const m of items) {
    const headers = [];
    for (const [k, v] of Object.entries(m.headers)) headers.push(k, v);
    yield JSON.stringify({ key: m.key, headers, payload: m.payload });
  }
}

async function loadKeys(where) {
  const text = /^https?:\/\//.test(where)
    ? await (await fetch(where)).text()
    : readFileSync(where, 'utf8');
  const keys = new Map();
  for (const jwk of JSON.parse(text).keys ?? []) {
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.kid) continue;
    keys.set(
      jwk.kid,
      createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' }),
    );
  }
  return keys;
}

function chainHash(prev, record) {
  return createHash('sha256')
    .update(Buffer.from(prev, 'hex'))
    .update(canonicalize(record), 'utf8')
    .digest('hex');
}

function checkSignature(keys, c) {
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

/** Verifies one tenant; returns { tenant, ok, records, checkpoints, firstInvalidSeq, reason, ... }. */
export function verifyTenant(tenant, records, checkpoints, keys, { allowPartial = false } = {}) {
  const out = {
    tenant,
    ok: true,
    records: 0,
    checkpoints: 0,
    fromSeq: 0,
    toSeq: 0,
    headHash: '',
    notes: [],
  };
  const faults = [];
  const bad = (seq, reason) => faults.push({ seq, reason });
  const seqs = [...records.keys()].sort((a, b) => a - b);
  const cps = [...checkpoints.values()].sort((a, b) => a.seq - b.seq);
  if (seqs.length) {
    const first = seqs[0];
    out.fromSeq = first;
    let prev;
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
      const r = records.get(seq);
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
  const lastSigned = cps.length ? cps[cps.length - 1].seq : 0;
  if (out.toSeq > lastSigned)
    out.notes.push(`seq ${lastSigned + 1}..${out.toSeq} not yet covered by a checkpoint`);
  if (faults.length) {
    const f = faults.reduce((a, b) => (b.seq < a.seq ? b : a));
    Object.assign(out, { ok: false, firstInvalidSeq: f.seq, reason: f.reason });
  }
  return out;
}

async function main() {
  const { values } = parseArgs({
    options: {
      kcat: { type: 'string' },
      ndjson: { type: 'string' },
      brokers: { type: 'string' },
      topic: { type: 'string' },
      keys: { type: 'string' },
      tenant: { type: 'string' },
      'allow-partial': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const sources = [values.kcat, values.ndjson, values.brokers].filter(Boolean).length;
  if (sources !== 1) fail('give exactly one of --kcat, --ndjson, --brokers');
  if (values.brokers && !values.topic) fail('--brokers needs --topic');
  if (!values.keys)
    fail('--keys is required (the audit service publishes /.well-known/audit-keys.json)');
  let keys;
  try {
    keys = await loadKeys(values.keys);
  } catch (err) {
    fail(`cannot load keys from ${values.keys}: ${err.message}`);
  }
  const input = values.ndjson
    ? lines(values.ndjson)
    : values.kcat
      ? lines(values.kcat)
      : fromKafka(values.brokers, values.topic);
  const parse = values.ndjson ? fromNdjson : fromKcat;
  const tenants = new Map();
  const conflicts = [];
  let n = 0;
  for await (const line of input) {
    n++;
    let item;
    try {
      item = parse(line);
    } catch (err) {
      fail(`input line ${n}: ${err.message}`);
    }
    if (!item) continue;
    const d = item.data;
    if (values.tenant && d.tenant_id !== values.tenant) continue;
    if (!Number.isSafeInteger(d.seq) || d.seq < 1)
      fail(`input line ${n}: seq is not a positive integer`);
    const t = tenants.get(d.tenant_id) ?? { records: new Map(), checkpoints: new Map() };
    tenants.set(d.tenant_id, t);
    const into = item.kind === 'record' ? t.records : t.checkpoints;
    const seen = into.get(d.seq);
    // At-least-once delivery repeats items; the same seq with different content is a fork.
    if (seen && canonicalize(seen) !== canonicalize(d))
      conflicts.push({ tenant: d.tenant_id, seq: d.seq, kind: item.kind });
    else into.set(d.seq, d);
  }
  const results = [...tenants].map(([tenant, t]) =>
    verifyTenant(tenant, t.records, t.checkpoints, keys, { allowPartial: values['allow-partial'] }),
  );
  for (const c of conflicts) {
    const r = results.find((x) => x.tenant === c.tenant);
    if (r && (r.ok || c.seq < r.firstInvalidSeq))
      Object.assign(r, {
        ok: false,
        firstInvalidSeq: c.seq,
        reason: `FORK (two different ${c.kind}s)`,
      });
  }
  const ok = results.length > 0 && results.every((r) => r.ok);
  if (values.json) process.stdout.write(`${JSON.stringify({ ok, tenants: results }, null, 2)}\n`);
  else {
    for (const r of results) {
      const head = r.ok
        ? `ok      ${r.tenant}  seq ${r.fromSeq}..${r.toSeq}  ${r.records} records, ${r.checkpoints} signed checkpoints`
        : `INVALID ${r.tenant}  first invalid seq ${r.firstInvalidSeq}: ${r.reason}`;
      process.stdout.write(`${head}\n${r.notes.map((x) => `        ${x}\n`).join('')}`);
    }
    if (!results.length) process.stdout.write('no audit records found\n');
    process.stdout.write(ok ? 'VERIFIED\n' : 'NOT VERIFIED\n');
  }
  return ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (err) => fail(err.stack ?? String(err)),
  );
}
