#!/usr/bin/env node
// audit-verify: verifies latchkey audit hash chains and signed checkpoints with no
// database access and no service code — only the published rules (implemented in
// libs/audit-chain):
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
import { createReadStream, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

// The rules live in one place, libs/audit-chain (the device agent's `audit verify`
// uses the same code); this script runs its build output (node tools/scripts/build.mjs).
const {
  auditKeysFromJwks,
  ChainCollector,
  chainItemFromKcat,
  chainItemFromNdjson,
  formatVerification,
} = createRequire(import.meta.url)('../../dist/libs/audit-chain/src/index.js');

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
  return auditKeysFromJwks(text);
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
  const parse = values.ndjson ? chainItemFromNdjson : chainItemFromKcat;
  const collector = new ChainCollector(values.tenant);
  let n = 0;
  for await (const line of input) {
    n++;
    try {
      const item = parse(line);
      if (item) collector.add(item);
    } catch (err) {
      fail(`input line ${n}: ${err.message}`);
    }
  }
  const results = collector.verify(keys, { allowPartial: values['allow-partial'] });
  const ok = results.length > 0 && results.every((r) => r.ok);
  if (values.json) process.stdout.write(`${JSON.stringify({ ok, tenants: results }, null, 2)}\n`);
  else process.stdout.write(formatVerification(results));
  return ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (err) => fail(err.stack ?? String(err)),
  );
}
