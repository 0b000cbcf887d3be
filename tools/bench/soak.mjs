#!/usr/bin/env node
// Soak (issue #10): the four services started here (profile `bench`, ports of their
// own, 127.0.0.1) under a steady mixed load for a bounded time, with each service's
// resident memory (VmRSS from /proc/<pid>/status) sampled every 10 s. The load, at a
// fixed rate (default 50 operations/s, open loop): 90% key sign-ins (GetNonce +
// SignInWithKey) of a handful of enrolled devices, 5% device registrations
// (CreateJoinToken + RegisterDevice) and 5% key provisionings (Begin/CompleteProvisioning,
// each replacing the user's earlier key on one of a few devices); audit ingests the
// events all of them publish, from a consumer group of this run's own placed at the
// topics' ends (the backlog of earlier runs is not this run's load).
//
// The first 30 s (10 s with --quick) are a warm-up; the measured window is the rest of
// the run. Per service: RSS at the window's start and end, the growth (MiB and MiB per
// hour), the maximum, the least-squares slope over the window's samples (MiB per hour),
// the same slope over the window's second half (a ramp-up at the start of the window
// inflates the first; a leak keeps the second up) and the CPU it used. No forced GC before the last sample (the services expose no way
// to ask for one), so the slope over all samples is the figure to read, not end − start.
// Ends with a `BENCH_JSON {...}` line (tools/bench/all.mjs); exit status 1 when an
// operation failed or a service died.
//
//   node tools/bench/soak.mjs [--minutes 10 | --quick] [--rate 50] [--devices 8]
//                             [--rotations 4] [--no-setup]
//
// --quick = 1 minute. Needs the stack up (set up here unless --no-setup).
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setup } from '../scripts/setup.mjs';
import { childCpuSeconds } from './proc-cpu.mjs';
import {
  benchTenant,
  client,
  enrolPairs,
  eventually,
  launcher,
  pct,
  provisionKey,
  registerDevice,
  rssMiB,
  signInOnce,
  startServices,
} from './support/kit.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rate: { type: 'string', default: '50' },
    devices: { type: 'string', default: '8' },
    rotations: { type: 'string', default: '4' },
    'no-setup': { type: 'boolean', default: false },
  },
});
const MINUTES = Number(opt.minutes ?? (opt.quick ? 1 : 10));
const WARMUP_S = opt.quick ? 10 : 30;
const SAMPLE_S = 10;
const RATE = Number(opt.rate);
const DEVICES = Number(opt.devices);
const ROTATIONS = Number(opt.rotations);
const PROFILE = 'bench';
const SERVICES = ['auth', 'registration', 'provisioning', 'audit'];
/** Open loop: a tick finding this many operations still in flight is skipped (and counted). */
const MAX_IN_FLIGHT = 64;
/**
 * Provisioning wants a second factor at most 10 minutes old (the default key policy) and
 * access tokens live 15 minutes: sign in again (password + TOTP) every 5 minutes.
 */
const TOKEN_REFRESH_MS = 5 * 60_000;

if (
  !(MINUTES * 60 >= WARMUP_S + 2 * SAMPLE_S) ||
  !(RATE > 0) ||
  !(DEVICES > 0) ||
  !(ROTATIONS > 0)
) {
  console.error(
    `soak: --minutes must leave at least ${2 * SAMPLE_S} s after the ${WARMUP_S} s warm-up; --rate, --devices, --rotations > 0`,
  );
  process.exit(2);
}

const log = (m) => process.stderr.write(`[soak] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (x) => Math.round(x).toLocaleString('en-US');
const signed = (x, d = 1) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

/**
 * audit's consumer group of this run, placed at the end of each domain topic that exists
 * (a topic created later is read from its beginning): events published before the run
 * are not ingested during it. Returns the group's lag and its removal.
 */
async function auditGroup(kafka) {
  const { DOMAIN_TOPICS } = require(
    path.join(launcher.root, 'dist/libs/events/src/catalogue/topics.js'),
  );
  const groupId = `latchkey-bench-soak-${randomUUID().slice(0, 8)}-audit`;
  const admin = kafka.admin();
  await eventually(
    async () => {
      await admin.connect();
      return true;
    },
    'Kafka',
    60_000,
  );
  const existing = new Set(await admin.listTopics());
  for (const topic of DOMAIN_TOPICS.filter((t) => existing.has(t))) {
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.setOffsets({
      groupId,
      topic,
      partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })),
    });
  }
  /** Events on the domain topics the group has not committed yet. */
  const lag = async () => {
    const committed = await admin.fetchOffsets({ groupId, topics: [...DOMAIN_TOPICS] });
    let n = 0;
    for (const { topic, partitions } of committed) {
      const ends = await admin.fetchTopicOffsets(topic);
      for (const e of ends) {
        const c = Number(partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
        n += Number(e.high) - (c >= 0 ? c : Number(e.low));
      }
    }
    return n;
  };
  let removed = false;
  /** Removes the group (audit stopped first) and disconnects; once. */
  const remove = async () => {
    if (removed) return;
    removed = true;
    try {
      await admin.deleteGroups([groupId]);
    } catch (err) {
      log(`consumer group ${groupId} not removed: ${err.message}`);
    }
    await admin.disconnect();
  };
  return { groupId, lag, remove };
}

async function main() {
  if (!opt['no-setup']) await setup({ profile: PROFILE });
  const kafka = new Kafka({
    clientId: 'latchkey-bench-soak',
    brokers: [launcher.catalog.kafka],
    logLevel: logLevel.NOTHING,
  });
  const group = await auditGroup(kafka);
  let services;
  try {
    services = await startServices(SERVICES, {
      profile: PROFILE,
      logName: 'soak',
      env: { audit: { AUDIT_CONSUMER_GROUP: group.groupId } },
    });
  } catch (err) {
    await group.remove();
    throw err;
  }
  const { ports, children, stopAll } = services;
  let stopping = false;
  const died = {};
  for (const s of SERVICES)
    children[s].once('exit', (code, signal) => {
      if (!stopping) died[s] = signal ?? code;
    });
  try {
    log(`services ready; enrolling ${DEVICES} + ${ROTATIONS} devices and users`);
    const tenant = await benchTenant({ ...services, name: 'bench-soak', displayName: 'soak' });
    const pairs = await enrolPairs(tenant, DEVICES);
    const rotations = await enrolPairs(tenant, ROTATIONS, 'rot-');
    await tenant.ctx.close();

    /** An account's access token, renewed (password + TOTP) before it expires. */
    const keeper = (account, first) => {
      let token = first;
      let at = Date.now();
      let pending;
      return () => {
        if (Date.now() - at < TOKEN_REFRESH_MS) return Promise.resolve(token);
        pending ??= tenant
          .signInPassword(account)
          .then((t) => {
            token = t;
            at = Date.now();
            return t;
          })
          .finally(() => {
            pending = undefined;
          });
        return pending;
      };
    };
    const adminToken = keeper(tenant.admin, tenant.adminToken);
    for (const r of rotations) r.token = keeper(r.account, r.userToken);

    const clients = Array.from({ length: 4 }, () =>
      client('auth', 'AuthService', `127.0.0.1:${ports.auth.grpc}`),
    );
    const stats = {
      'sign-in': { n: 0, errors: 0, latencies: [], firstError: undefined },
      registration: { n: 0, errors: 0, latencies: [], firstError: undefined },
      provisioning: { n: 0, errors: 0, latencies: [], firstError: undefined },
    };
    let registered = 0;
    let provisioned = 0;
    const ops = {
      'sign-in': (k) => signInOnce(clients[k % clients.length], tenant, pairs[k % pairs.length]),
      registration: async () => registerDevice(tenant, `soak-${registered++}`, await adminToken()),
      provisioning: async () => {
        const r = rotations[provisioned++ % rotations.length];
        const key = await provisionKey(tenant, r, await r.token());
        Object.assign(r, key);
      },
    };
    /** 20 ticks: 18 sign-ins, 1 registration, 1 provisioning. */
    const kindOf = (k) =>
      k % 20 === 5 ? 'registration' : k % 20 === 15 ? 'provisioning' : 'sign-in';

    // Samples: every SAMPLE_S from the load's start, and one when it ends.
    const samples = [];
    const sample = (t) =>
      samples.push({
        t,
        rss: Object.fromEntries(SERVICES.map((s) => [s, rssMiB(children[s].pid)])),
        cpu: Object.fromEntries(SERVICES.map((s) => [s, childCpuSeconds(children[s])])),
      });

    const durationMs = MINUTES * 60_000;
    log(`load: ${RATE} ops/s for ${MINUTES} min (${WARMUP_S} s warm-up), RSS every ${SAMPLE_S} s`);
    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    let sampling = true;
    const sampler = (async () => {
      for (let j = 0; sampling; j++) {
        const due = t0 + j * SAMPLE_S * 1000;
        if (due >= t0 + durationMs) break;
        await sleep(Math.max(0, due - performance.now()));
        if (!sampling) break;
        sample(elapsed());
        if (j > 0 && j % 6 === 0)
          log(
            `${elapsed().toFixed(0)} s: ${Object.values(stats).reduce((a, s) => a + s.n, 0)} ops, ${Object.values(stats).reduce((a, s) => a + s.errors, 0)} errors; RSS ${SERVICES.map((s) => `${s} ${samples.at(-1).rss[s].toFixed(0)}`).join(', ')} MiB`,
          );
      }
    })();

    const inFlight = new Set();
    let skipped = 0;
    let k = 0;
    for (;;) {
      const due = t0 + (k * 1000) / RATE;
      if (due >= t0 + durationMs) break;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const kind = kindOf(k);
      const tick = k++;
      if (inFlight.size >= MAX_IN_FLIGHT) {
        skipped++;
        continue;
      }
      const st = stats[kind];
      const s = performance.now();
      const p = ops[kind](tick).then(
        () => {
          st.n++;
          st.latencies.push(performance.now() - s);
        },
        (err) => {
          st.errors++;
          st.firstError ??= err;
        },
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await Promise.all(inFlight);
    const loadSeconds = elapsed();
    sampling = false;
    await sampler;
    sample(loadSeconds);

    // audit ingests what the load published: how far behind it is at the end.
    const lagAtEnd = await group.lag().catch(() => NaN);
    const drainStart = performance.now();
    let lag = lagAtEnd;
    while (lag > 0 && performance.now() - drainStart < 30_000) {
      await sleep(1000);
      lag = await group.lag().catch(() => NaN);
    }
    const drainSeconds = (performance.now() - drainStart) / 1000;
    for (const c of clients) c.close();
    tenant.close();
    stopping = true;
    await stopAll();
    await group.remove();
    // Figures over the measured window.
    const window = samples.filter((x) => x.t >= WARMUP_S - 0.5);
    const first = window[0];
    const last = window.at(-1);
    const hours = (last.t - first.t) / 3600;
    const secondHalf = window.filter((x) => x.t >= (first.t + last.t) / 2);
    const perService = {};
    for (const s of SERVICES) {
      const ys = window.map((x) => x.rss[s]);
      perService[s] = {
        startMiB: first.rss[s],
        endMiB: last.rss[s],
        growthMiB: last.rss[s] - first.rss[s],
        growthMiBPerHour: (last.rss[s] - first.rss[s]) / hours,
        maxMiB: Math.max(...ys),
        slopeMiBPerHour: slope(
          window.map((x) => x.t / 3600),
          ys,
        ),
        slopeSecondHalfMiBPerHour: slope(
          secondHalf.map((x) => x.t / 3600),
          secondHalf.map((x) => x.rss[s]),
        ),
        cpuPercent: (100 * (last.cpu[s] - first.cpu[s])) / (last.t - first.t),
      };
    }
    const all = Object.values(stats);
    const done = all.reduce((a, s) => a + s.n, 0);
    const errors = all.reduce((a, s) => a + s.errors, 0);
    const latencies = all.flatMap((s) => s.latencies).sort((a, b) => a - b);
    for (const st of all) st.latencies.sort((a, b) => a - b);
    const diedList = Object.entries(died).map(([s, how]) => `${s} (${how})`);

    console.log(
      `soak: ${MINUTES} min at ${RATE} ops/s (${WARMUP_S} s warm-up, then ${((last.t - first.t) / 60).toFixed(1)} min measured, ${window.length} samples), ${DEVICES} signing devices, 127.0.0.1`,
    );
    console.log(
      `  ops: ${fmt(done)} done, ${errors} errors, ${skipped} skipped (over ${MAX_IN_FLIGHT} in flight); ${(done / loadSeconds).toFixed(1)} ops/s; p99 ${pct(latencies, 99)?.toFixed(1)} ms`,
    );
    for (const [kind, st] of Object.entries(stats))
      console.log(
        `    ${kind.padEnd(13)} ${String(st.n).padStart(7)} done  ${String(st.errors).padStart(4)} errors  p50 ${pct(st.latencies, 50)?.toFixed(1) ?? '–'} ms  p99 ${pct(st.latencies, 99)?.toFixed(1) ?? '–'} ms${st.firstError ? `  first error: ${st.firstError.message}` : ''}`,
      );
    console.log(
      `  RSS per service (MiB), measured window; slope: least squares over its samples, 2nd half: over its second half`,
    );
    const head = [
      'service',
      'start',
      'end',
      'growth',
      'MiB/h',
      'max',
      'slope MiB/h',
      '2nd half',
      'CPU %',
    ];
    const rows = SERVICES.map((s) => {
      const v = perService[s];
      return [
        s,
        v.startMiB.toFixed(1),
        v.endMiB.toFixed(1),
        signed(v.growthMiB),
        signed(v.growthMiBPerHour),
        v.maxMiB.toFixed(1),
        signed(v.slopeMiBPerHour),
        signed(v.slopeSecondHalfMiBPerHour),
        v.cpuPercent.toFixed(0),
      ];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows])
      console.log(
        `    ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`,
      );
    console.log(
      `  audit consumer lag at the end of the load: ${lagAtEnd} events${lag === 0 && lagAtEnd > 0 ? ` (ingested ${drainSeconds.toFixed(0)} s later)` : lag > 0 ? ` (${lag} still after ${drainSeconds.toFixed(0)} s)` : ''}`,
    );
    console.log(`  services died: ${diedList.length ? diedList.join(', ') : 'none'}`);
    console.log(
      `  load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} on ${availableParallelism()} cores`,
    );
    console.log(
      `BENCH_JSON ${JSON.stringify({
        bench: 'soak',
        value: done / loadSeconds,
        unit: `mixed ops/s, ${MINUTES} min soak`,
        p99: pct(latencies, 99),
        errors,
        skipped,
        died: diedList,
        minutes: MINUTES,
        warmupSeconds: WARMUP_S,
        windowSeconds: last.t - first.t,
        samples: window.length,
        ops: Object.fromEntries(
          Object.entries(stats).map(([kind, st]) => [
            kind,
            { n: st.n, errors: st.errors, p50: pct(st.latencies, 50), p99: pct(st.latencies, 99) },
          ]),
        ),
        auditLagAtEnd: lagAtEnd,
        services: perService,
        rows: SERVICES.map((s) => ({
          bench: `soak: ${s} RSS`,
          value: perService[s].slopeMiBPerHour,
          unit: `MiB/h RSS slope (${perService[s].startMiB.toFixed(0)} → ${perService[s].endMiB.toFixed(0)} MiB, max ${perService[s].maxMiB.toFixed(0)}; 2nd half ${signed(perService[s].slopeSecondHalfMiBPerHour, 0)} MiB/h)`,
          baseline: 'RSS at window start, MiB',
          baselineValue: perService[s].startMiB,
        })),
      })}`,
    );
    const ok = errors === 0 && diedList.length === 0 && window.length >= 2;
    process.exitCode = ok ? 0 : 1;
  } finally {
    stopping = true;
    await stopAll();
    await group.remove();
  }
}

main().catch((err) => {
  console.error(`soak failed: ${err.stack ?? err}`);
  process.exit(1);
});
