#!/usr/bin/env node
// Nonce benchmark: issue + consume pairs (AuthService.GetNonce then ConsumeNonce)
// over gRPC from parallel clients on 127.0.0.1 against a built auth service, and
// in the same run the raw Redis rate of the same two commands (SET EX NX, GETDEL)
// from Node with the same concurrency, as the baseline.
// Target (issue #3): >= 10,000 issue+consume pairs/s on a 2-core machine.
//
//   node tools/bench/nonce.mjs [--seconds 10] [--channels 8] [--concurrency 128]
//                              [--target 127.0.0.1:50253]   (default: starts auth, profile bench)
//                              [--cpu-prof]   (writes a V8 CPU profile of auth to tmp/bench/prof)
// Needs the set-up done (npm start or npm test has run once: databases, build).
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { client, launcher, pct, startProfiled } from './support/kit.mjs';
import { childCpuSeconds } from './proc-cpu.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { Redis } = require('ioredis');

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(' ')
    .split('--')
    .filter(Boolean)
    .map((a) => a.trim().split(/\s+/)),
);
const SECONDS = Number(args.seconds ?? 10);
const CHANNELS = Number(args.channels ?? 8);
const CONCURRENCY = Number(args.concurrency ?? 128);
const PROFILE = 'bench';
const TARGET_PAIRS = 10_000;

/** Runs `pair` from CONCURRENCY loops for SECONDS; returns pairs/s and latency percentiles (ms). */
async function drive(pair, seconds = SECONDS) {
  const latencies = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      while (performance.now() < deadline) {
        const s = performance.now();
        try {
          await pair(i);
          latencies.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    pairsPerSecond: latencies.length / elapsed,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    errors,
    pairs: latencies.length,
  };
}

function authClients(address) {
  return Array.from({ length: CHANNELS }, (_, i) =>
    // A distinct channel option per client: grpc-js would otherwise share one subchannel.
    client('auth', 'AuthService', address, { 'latchkey.bench.channel': i }),
  );
}

/** A bare grpc-js health server in a child process; resolves with its address and client class. */
async function bareGrpcServer() {
  const healthProto = require.resolve('grpc-health-check/proto/health/v1/health.proto');
  const code = `
    const grpc = require(${JSON.stringify(require.resolve('@grpc/grpc-js'))});
    const pl = require(${JSON.stringify(require.resolve('@grpc/proto-loader'))});
    const { Health } = grpc.loadPackageDefinition(pl.loadSync(${JSON.stringify(healthProto)})).grpc.health.v1;
    const s = new grpc.Server();
    s.addService(Health.service, { check: (_c, cb) => cb(null, { status: 1 }) });
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => console.log(port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(d))));
  const { Health } = grpc.loadPackageDefinition(protoLoader.loadSync(healthProto)).grpc.health.v1;
  return { child, Health, address: `127.0.0.1:${port}` };
}

/** CPU seconds (user + system) of any process by pid (Linux /proc), or NaN. */
const processCpuSeconds = (pid) => (pid ? childCpuSeconds({ pid }) : NaN);

/** redis-server's pid when it runs on this machine (INFO server), else undefined. */
async function redisServerPid(redis) {
  try {
    const info = await redis.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const call = (client, method, req) =>
  new Promise((resolve, reject) =>
    client[method](req, (err, res) => (err ? reject(err) : resolve(res))),
  );

async function main() {
  let child;
  let address = args.target;
  if (!address) {
    child = process.argv.includes('--cpu-prof')
      ? startProfiled('auth', { profile: PROFILE, stdio: 'ignore' })
      : launcher.startService('auth', {
          profile: PROFILE,
          logFile: path.join(launcher.root, 'tmp/bench/auth.log'),
        });
    await launcher.waitReady('auth', PROFILE, { child, timeoutMs: 60_000 });
    address = `127.0.0.1:${launcher.ports('auth', PROFILE).grpc}`;
  }
  try {
    const clients = authClients(address);
    const binding = {
      tenantId: randomUUID(),
      deviceId: randomUUID(),
      purpose: 'NONCE_PURPOSE_SIGN_IN',
    };
    const pair = async (i) => {
      const c = clients[i % clients.length];
      const { nonce } = await c.call('GetNonce', binding);
      await c.call('ConsumeNonce', { ...binding, nonce });
    };
    await drive(pair, 2); // warm-up
    const authCpu0 = childCpuSeconds(child);
    const service = await drive(pair);
    const authCpuUs = ((childCpuSeconds(child) - authCpu0) * 1e6) / service.pairs;
    for (const c of clients) c.close();

    // Ceiling of gRPC itself here and now: a bare grpc-js server (another process, no Nest,
    // no Redis) answering the same number of unary calls.
    const bare = await bareGrpcServer();
    const healthClients = Array.from(
      { length: CHANNELS },
      (_, i) =>
        new bare.Health(bare.address, grpc.credentials.createInsecure(), {
          'latchkey.bench.channel': i,
        }),
    );
    const bareCall = async (i) => {
      const c = healthClients[i % healthClients.length];
      await call(c, 'check', {});
      await call(c, 'check', {});
    };
    await drive(bareCall, 2); // warm-up (JIT on both sides)
    const bareCpu0 = childCpuSeconds(bare.child);
    const clientCpu0 = process.cpuUsage();
    const grpcOnly = await drive(bareCall);
    const clientCpu = process.cpuUsage(clientCpu0);
    // CPU per unary call of a bare grpc-js server (empty handler) and of the grpc-js client.
    const serverUsPerCall = ((childCpuSeconds(bare.child) - bareCpu0) * 1e6) / (2 * grpcOnly.pairs);
    const clientUsPerCall = (clientCpu.user + clientCpu.system) / (2 * grpcOnly.pairs);
    for (const c of healthClients) c.close();
    bare.child.kill();

    // Baseline: the same two Redis commands straight from Node, same concurrency and connections.
    const redisUrl = launcher.serviceEnv('auth', PROFILE).REDIS_URL;
    const conns = Array.from({ length: CHANNELS }, () => new Redis(redisUrl));
    const redisPid = await redisServerPid(conns[0]);
    const redisCpu0 = processCpuSeconds(redisPid);
    const raw = await drive(async (i) => {
      const r = conns[i % conns.length];
      const key = `latchkey:bench:${randomUUID()}`;
      await r.set(key, 'v', 'EX', 60, 'NX');
      await r.getdel(key);
    });
    const redisUsPerPair = ((processCpuSeconds(redisPid) - redisCpu0) * 1e6) / raw.pairs;
    for (const r of conns) r.disconnect();

    const fmt = (x) => Math.round(x).toLocaleString('en-US');
    console.log(
      `nonce benchmark: ${SECONDS} s, ${CHANNELS} gRPC channels, ${CONCURRENCY} in flight, 127.0.0.1`,
    );
    console.log(
      `  auth gRPC  GetNonce+ConsumeNonce: ${fmt(service.pairsPerSecond)} pairs/s  p50 ${service.p50.toFixed(2)} ms  p99 ${service.p99.toFixed(2)} ms  (${service.pairs} pairs, ${service.errors} errors)`,
    );
    console.log(
      `  raw Redis  SET EX NX + GETDEL:    ${fmt(raw.pairsPerSecond)} pairs/s  p50 ${raw.p50.toFixed(2)} ms  p99 ${raw.p99.toFixed(2)} ms  (same run, ioredis)`,
    );
    console.log(
      `  bare grpc-js  2 unary calls:      ${fmt(grpcOnly.pairsPerSecond)} pairs/s  p50 ${grpcOnly.p50.toFixed(2)} ms  p99 ${grpcOnly.p99.toFixed(2)} ms  (same run, no Nest, no Redis)`,
    );
    const cores = availableParallelism();
    const us = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} µs` : 'n/a');
    console.log(
      `  CPU per pair: auth ${us(authCpuUs)}; bare grpc-js per unary call: server ${us(serverUsPerCall)}, client ${us(clientUsPerCall)}; redis-server per SET+GETDEL ${us(redisUsPerPair)}`,
    );
    // What this machine can do at best: a pair is two unary calls on the server and the client
    // plus Redis's own work, with nothing of the service's own (no Nest, no checks, no tracing).
    const floorUs = 2 * serverUsPerCall + 2 * clientUsPerCall + (redisUsPerPair || 0);
    const floorNoClientUs = 2 * serverUsPerCall + (redisUsPerPair || 0);
    if (Number.isFinite(floorUs)) {
      console.log(
        `  ceiling on ${cores} cores from those costs: ${fmt((cores * 1e6) / floorUs)} pairs/s with the clients on this machine, ${fmt((cores * 1e6) / floorNoClientUs)} pairs/s if the clients cost nothing`,
      );
    }
    console.log(
      `  load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} on ${availableParallelism()} cores`,
    );
    console.log(
      `  ratio service/raw: ${(service.pairsPerSecond / raw.pairsPerSecond).toFixed(2)}   target >= ${fmt(TARGET_PAIRS)} pairs/s: ${service.pairsPerSecond >= TARGET_PAIRS ? 'met' : 'NOT met'}`,
    );
  } finally {
    if (child) await launcher.stopChild(child);
  }
}

main().catch((err) => {
  console.error(`nonce benchmark failed: ${err.stack ?? err}`);
  process.exit(1);
});
