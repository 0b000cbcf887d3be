#!/usr/bin/env node
// Audit ingest benchmark (issue #7): preloads N domain events on a Kafka topic of
// its own, then measures
//   1. the raw consume rate: the same events read with kafkajs and discarded;
//   2. audit: time until every event is stored, hash-chained (and published on the
//      SOC stream), with the audit process's resident memory sampled throughout.
// Target on a 2-core machine: >= 20,000 events/s, >= 50% of the raw rate,
// RSS <= 300 MB and flat across 1,000,000 events.
//
//   node tools/bench/audit-ingest.mjs [--events 1000000] [--tenants 100] [--no-stream]
//                                     [--heap-mb <MiB>] [--node-options '<flags>'] [--skip-build] [--keep] [--cpu-prof]
// Uses a scratch database (latchkey_bench_audit_ingest_<id>) and topics bench.audit.ingest.<id>.*,
// removed at the end unless --keep. Needs the stack up and a build (done unless --skip-build).
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cpuOfPids, cpuSince, pidsMatching, postgresPids } from './proc-cpu.mjs';
import { launcher, rssMiB, startProfiled } from './support/kit.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

const { values: opt } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    tenants: { type: 'string', default: '100' },
    partitions: { type: 'string', default: '3' },
    'no-stream': { type: 'boolean', default: false },
    'skip-build': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'heap-mb': { type: 'string' },
    /** Extra V8/Node flags for audit (e.g. --max-semi-space-size=32), appended to NODE_OPTIONS. */
    'node-options': { type: 'string' },
    /** Writes a V8 CPU profile of audit to tmp/bench/prof. */
    'cpu-prof': { type: 'boolean', default: false },
  },
});
const N = Number(opt.events);
const TENANTS = Number(opt.tenants);
const PARTITIONS = Number(opt.partitions);
const BROKERS = [launcher.catalog.kafka];
const ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const id = randomBytes(4).toString('hex');
const DB = `latchkey_bench_audit_ingest_${id}`;
const TOPIC = `bench.audit.ingest.${id}.domain`;
const STREAM = `bench.audit.ingest.${id}.stream`;
const DLQ = `bench.audit.ingest.${id}.dlq`;
const log = (m) => process.stderr.write(`[audit-ingest] ${m}\n`);
const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** CPU seconds (user + system) a process has used so far: a figure other load on the machine barely moves. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

async function scratchDatabase() {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${DB}"`);
  await admin.end();
  const db = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:5432/${DB}` });
  await db.connect();
  const dir = join(launcher.root, 'apps/audit/prisma/migrations');
  for (const m of readdirSync(dir)
    .filter((d) => /^\d/.test(d))
    .sort())
    await db.query(readFileSync(join(dir, m, 'migration.sql'), 'utf8'));
  return db;
}

async function dropDatabase() {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`);
  await admin.end();
}

/** N dev.latchkey.device.registered.v1 events (CloudEvents binary mode, key = tenant). */
async function preload(kafka) {
  const tenants = Array.from({ length: TENANTS }, () => randomUUID());
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = performance.now();
  const BATCH = 2000;
  const inflight = [];
  for (let i = 0; i < N; i += BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(N, i + BATCH); j++) {
      const tenantId = tenants[j % TENANTS];
      const deviceId = randomUUID();
      messages.push({
        key: tenantId,
        value: JSON.stringify({
          tenantId,
          deviceId,
          displayName: `laptop-${j}`,
          osType: 'windows',
          osVersion: '11',
          joinType: 'joined',
          attestationLevel: 'tpm',
        }),
        headers: {
          ce_specversion: '1.0',
          ce_id: randomUUID(),
          ce_source: '/latchkey/registration',
          ce_type: 'dev.latchkey.device.registered.v1',
          ce_time: new Date().toISOString(),
          ce_subject: `devices/${deviceId}`,
          ce_tenantid: tenantId,
          'content-type': 'application/json',
          traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
        },
      });
    }
    inflight.push(producer.send({ topic: TOPIC, messages }));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
  await producer.disconnect();
  const s = (performance.now() - t0) / 1000;
  log(`preloaded ${fmt(N)} events in ${s.toFixed(1)} s`);
}

/** The baseline: read all N events with kafkajs (same fetch size as audit) and discard them. */
async function rawConsume(kafka) {
  const consumer = kafka.consumer({
    groupId: `bench-raw-${id}`,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  let seen = 0;
  let t0;
  let cpu0;
  const done = new Promise((resolve) => {
    consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: PARTITIONS,
      eachBatch: async ({ batch, resolveOffset }) => {
        t0 ??= performance.now();
        cpu0 ??= process.cpuUsage();
        for (const m of batch.messages) {
          // Touch what any consumer must: headers and value.
          if (m.value.length === 0 || !m.headers.ce_id) throw new Error('bad message');
        }
        seen += batch.messages.length;
        resolveOffset(batch.messages[batch.messages.length - 1].offset);
        if (seen >= N) resolve();
      },
    });
  });
  await done;
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await consumer.disconnect();
  return { seconds: s, rate: N / s, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function auditIngest(db) {
  const child = (opt['cpu-prof'] ? startProfiled : launcher.startService)('audit', {
    profile: 'bench',
    stdio: 'ignore',
    env: {
      HTTP_PORT: '18984',
      GRPC_PORT: '18985',
      LOG_LEVEL: 'warn',
      DATABASE_URL: `postgresql://postgres@127.0.0.1:5432/${DB}`,
      AUDIT_TOPICS: TOPIC,
      AUDIT_STREAM_TOPIC: STREAM,
      AUDIT_DLQ_TOPIC: DLQ,
      AUDIT_CONSUMER_GROUP: `bench-audit-${id}`,
      AUDIT_STREAM_ENABLED: opt['no-stream'] ? 'false' : 'true',
      AUTH_ISSUER: 'http://127.0.0.1:9',
      // The caller's NODE_OPTIONS, then an optional heap cap (what a deployment's memory limit
      // would impose) and --node-options.
      NODE_OPTIONS: [
        process.env.NODE_OPTIONS,
        opt['heap-mb'] && `--max-old-space-size=${opt['heap-mb']}`,
        opt['node-options'],
      ]
        .filter(Boolean)
        .join(' '),
    },
  });
  const stop = () => child.kill('SIGKILL');
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const samples = [];
  let t0;
  let stored = 0;
  let streamed = 0;
  // The rest of the pipeline on this machine: PostgreSQL (this database's backends and the
  // shared WAL writer, checkpointer, ...; not other databases' backends) and the Kafka broker.
  const pgPids = () => postgresPids((db) => db === DB);
  let others;
  let othersAtStored;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`audit exited (${child.exitCode ?? child.signalCode})`);
      const { rows } = await db.query(
        `SELECT coalesce(sum(seq), 0)::bigint AS n, coalesce(sum(streamed_seq), 0)::bigint AS s
           FROM audit_chain_heads`,
      );
      stored = Number(rows[0].n);
      streamed = Number(rows[0].s);
      if (stored > 0 && !t0) {
        t0 = performance.now();
        others = { pg: cpuOfPids(pgPids()), broker: cpuOfPids(pidsMatching('kafka.Kafka')) };
      }
      if (stored >= N && others && !othersAtStored)
        othersAtStored = { pg: cpuSince(others.pg), broker: cpuSince(others.broker) };
      const rss = rssMiB(child.pid);
      if (t0)
        samples.push({
          t: (performance.now() - t0) / 1000,
          stored,
          rss,
          cpu: cpuSeconds(child.pid),
        });
      if (stored >= N && (opt['no-stream'] || streamed >= N)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await launcher.stopChild(child);
  }
  const last = samples.find((s) => s.stored >= N) ?? samples[samples.length - 1];
  const total = samples[samples.length - 1].t;
  // CPU from the first stored batch to the last: the audit process's own cost per event.
  const cpu = last.cpu - samples[0].cpu;
  return {
    storedSeconds: last.t,
    totalSeconds: total,
    samples,
    cpuSeconds: cpu,
    pgCpuSeconds: othersAtStored?.pg ?? NaN,
    brokerCpuSeconds: othersAtStored?.broker ?? NaN,
  };
}

async function main() {
  if (!opt['skip-build']) {
    const { setup } = await import('../scripts/setup.mjs');
    await setup({ profile: 'dev' });
  }
  const db = await scratchDatabase();
  const kafka = new Kafka({
    brokers: BROKERS,
    clientId: 'bench-audit-ingest',
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [TOPIC, STREAM, DLQ].map((topic) => ({
      topic,
      numPartitions: PARTITIONS,
      replicationFactor: 1,
    })),
  });
  try {
    await preload(kafka);
    log('raw kafkajs consume...');
    const raw = await rawConsume(kafka);
    log(`raw: ${fmt(raw.rate)} events/s`);
    log('audit ingest...');
    const audit = await auditIngest(db);
    const rate = N / audit.storedSeconds;
    const rss = audit.samples.map((s) => s.rss).filter(Number.isFinite);
    const at = (f) =>
      audit.samples[Math.min(audit.samples.length - 1, Math.floor(audit.samples.length * f))].rss;
    const { rows } = await db.query(
      `SELECT count(*)::int AS n, count(DISTINCT tenant_id)::int AS t FROM audit_records`,
    );
    // The targets as CPU: both cores for everything at the higher of the two rates.
    const targetRate = Math.max(20000, raw.rate / 2);
    const budget = (1e6 * availableParallelism()) / targetRate;
    const lowerBound = (1e6 * (raw.cpuSeconds + audit.pgCpuSeconds + audit.brokerCpuSeconds)) / N;
    const lines = [
      `audit ingest benchmark: ${fmt(N)} events, ${TENANTS} tenants, ${PARTITIONS} partitions, stream ${opt['no-stream'] ? 'off' : 'on'}`,
      `  raw kafkajs consume (baseline) : ${fmt(raw.rate)} events/s (${raw.seconds.toFixed(1)} s; ${((1e6 * raw.cpuSeconds) / N).toFixed(1)} µs CPU/event)`,
      `  audit stored + chained         : ${fmt(rate)} events/s (${audit.storedSeconds.toFixed(1)} s) = ${((100 * rate) / raw.rate).toFixed(0)}% of raw`,
      `  audit process CPU              : ${((1e6 * audit.cpuSeconds) / N).toFixed(1)} µs/event until stored (user+sys; ${opt['no-stream'] ? 'no stream' : 'incl. streaming so far'})`,
      `  PostgreSQL / Kafka broker CPU  : ${((1e6 * audit.pgCpuSeconds) / N).toFixed(1)} / ${((1e6 * audit.brokerCpuSeconds) / N).toFixed(1)} µs/event until stored (same window)`,
      `  CPU budget at the targets      : ${budget.toFixed(1)} µs/event for audit + PostgreSQL + broker together (${availableParallelism()} cores at ${fmt(targetRate)} events/s)`,
      `  lower bound at these costs     : ${lowerBound.toFixed(1)} µs/event = the raw consume's CPU (audit must read the events too) + PostgreSQL + broker: ${lowerBound > budget ? 'OVER the budget: the targets cannot be met on this machine' : 'within the budget'}`,
      `  load average (1 min)           : ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]} on ${availableParallelism()} cores`,
      opt['no-stream']
        ? null
        : `  audit stored + chained + streamed: ${audit.totalSeconds.toFixed(1)} s (${fmt(N / audit.totalSeconds)} events/s)`,
      `  audit RSS (MiB)                : max ${Math.max(...rss).toFixed(0)}; at 10/50/90/100%: ${[0.1, 0.5, 0.9, 0.999].map((f) => at(f).toFixed(0)).join(' / ')}`,
      `  rows ${fmt(rows[0].n)} in ${rows[0].t} chains`,
      `  target: >= 20,000 events/s and >= 50% of raw, RSS <= 300 MiB: ${
        rate >= 20000 && rate >= raw.rate / 2 && Math.max(...rss) <= 300 ? 'MET' : 'NOT MET'
      }`,
    ].filter(Boolean);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await db.end();
    if (!opt.keep) {
      await admin.deleteTopics({ topics: [TOPIC, STREAM, DLQ] }).catch(() => undefined);
      await dropDatabase();
    }
    await admin.disconnect();
  }
}

main().catch((err) => {
  process.stderr.write(`[audit-ingest] failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
