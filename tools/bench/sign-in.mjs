#!/usr/bin/env node
// Key sign-in benchmark (issue #6): GetNonce + SignInWithKey over gRPC from C
// parallel clients on 127.0.0.1 for D seconds, against auth, registration and
// provisioning started here (profile `bench`, ports of their own). Each sign-in
// is a real one: a device registered with registration (tenant CA, certificate),
// a user key provisioned by provisioning after password + TOTP, a nonce, a
// request signed by the device key carrying an assertion signed by the user key;
// auth verifies both (and the device certificate), consumes the nonce, issues an
// ID token, an access token and a PRT, encrypts a session key to the device's
// transport key and stores the session with its event.
// Baseline, same run: the single-process crypto floor — the signature
// verifications, signatures and encryption one sign-in needs, in a loop.
// Targets on a 2-core machine: >= 2,000 sign-ins/s, p99 <= 50 ms, >= 50% of the floor.
//
//   node tools/bench/sign-in.mjs [--concurrency 64] [--seconds 10] [--devices 16] [--no-setup]
import { createHash, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { CompactEncrypt, generateKeyPair, importSPKI, jwtVerify, SignJWT } from 'jose';
import { setup } from '../scripts/setup.mjs';
import { childCpuSeconds } from './proc-cpu.mjs';
import {
  benchTenant,
  client,
  enrolPairs,
  jws,
  pct,
  signInOnce,
  startProfiled,
  startServices,
} from './support/kit.mjs';

const { values: opt } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '10' },
    devices: { type: 'string', default: '16' },
    'no-setup': { type: 'boolean', default: false },
    /** Writes a V8 CPU profile of auth to tmp/bench/prof. */
    'cpu-prof': { type: 'boolean', default: false },
  },
});
const CONCURRENCY = Number(opt.concurrency);
const SECONDS = Number(opt.seconds);
const DEVICES = Number(opt.devices);
const PROFILE = 'bench';
const TARGET = { perSecond: 2000, p99: 50, ratio: 0.5 };

/** One sign-in's server-side crypto, single process: the floor the service is compared with. */
async function cryptoFloor(seconds) {
  const ca = await generateKeyPair('ES256');
  const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const user = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const transport = await importSPKI(
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }),
    'ECDH-ES',
  );
  const signing = ca.privateKey;
  const now = () => Math.floor(Date.now() / 1000);
  const t = now();
  const inner = jws(
    { alg: 'ES256', kid: 'c' },
    { iss: 'u', aud: 'a', iat: t, exp: t + 60, request_nonce: 'n' },
    user.privateKey,
  );
  const outer = jws(
    { alg: 'ES256', kid: 'd' },
    { tid: 't', sub: 'd', aud: 'a', iat: t, nonce: 'n', user_assertion: inner },
    device.privateKey,
  );
  let n = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  while (performance.now() < until) {
    // verify: the outer and the inner JWS (the device certificate's CA signature is checked
    // once per certificate, not per sign-in)
    await jwtVerify(outer, device.publicKey, { algorithms: ['ES256'] });
    await jwtVerify(inner, user.publicKey, { algorithms: ['ES256'] });
    // sign: access token and ID token; encrypt the session key; wrap it; hash the PRT
    const claims = { sub: 'u', tid: 't', amr: ['pop', 'swk'], did: 'd', cid: 'c' };
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(t).sign(signing);
    await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuedAt(t).sign(signing);
    const key = randomBytes(32);
    await new CompactEncrypt(key)
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
      .encrypt(transport);
    const prt = randomBytes(32).toString('base64url');
    hkdfSync('sha256', prt, 'sid', 'wrap', 32);
    createHash('sha256').update(prt).digest();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function main() {
  if (!opt['no-setup']) await setup({ profile: 'dev' });
  const services = await startServices(['auth', 'registration', 'provisioning'], {
    profile: PROFILE,
    logName: 'sign-in',
    start: opt['cpu-prof'] ? { auth: startProfiled } : {},
  });
  const { ports, children, stopAll } = services;
  try {
    const tenant = await benchTenant({
      ...services,
      name: 'bench-signin',
      displayName: 'sign-in bench',
    });
    const pairs = await enrolPairs(tenant, DEVICES);
    await tenant.ctx.close();

    const clients = Array.from({ length: 8 }, () =>
      client('auth', 'AuthService', `127.0.0.1:${ports.auth.grpc}`),
    );
    const drive = async (seconds) => {
      const latencies = [];
      let errors = 0;
      let firstError;
      const t0 = performance.now();
      const deadline = t0 + seconds * 1000;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, i) => {
          while (performance.now() < deadline) {
            const s = performance.now();
            try {
              await signInOnce(clients[i % clients.length], tenant, pairs[i % pairs.length]);
              latencies.push(performance.now() - s);
            } catch (err) {
              errors++;
              firstError ??= err;
            }
          }
        }),
      );
      latencies.sort((a, b) => a - b);
      return {
        perSecond: latencies.length / ((performance.now() - t0) / 1000),
        p50: pct(latencies, 50),
        p99: pct(latencies, 99),
        n: latencies.length,
        errors,
        firstError,
      };
    };
    await drive(2); // warm-up: caches, JIT, connections
    const authCpu0 = childCpuSeconds(children.auth);
    const service = await drive(SECONDS);
    // auth's CPU per sign-in: a figure the machine's other load barely moves.
    const authCpuMs = ((childCpuSeconds(children.auth) - authCpu0) * 1000) / service.n;
    for (const c of clients) c.close();
    tenant.close();
    await stopAll();
    const floorCpu0 = process.cpuUsage();
    const floorT0 = performance.now();
    const floor = await cryptoFloor(Math.min(SECONDS, 5));
    const floorCpu = process.cpuUsage(floorCpu0);
    // CPU ms per crypto-floor sign-in: its wall time scaled by the CPU share it got.
    const floorCpuMs =
      ((1000 / floor) * ((floorCpu.user + floorCpu.system) / 1000)) / (performance.now() - floorT0);

    const fmt = (x) => Math.round(x).toLocaleString('en-US');
    const ratio = service.perSecond / floor;
    console.log(
      `sign-in benchmark: ${SECONDS} s, ${CONCURRENCY} in flight, ${DEVICES} devices, 127.0.0.1`,
    );
    console.log(
      `  auth gRPC  GetNonce+SignInWithKey: ${fmt(service.perSecond)} sign-ins/s  p50 ${service.p50?.toFixed(1)} ms  p99 ${service.p99?.toFixed(1)} ms  (${service.n} sign-ins, ${service.errors} errors${service.firstError ? `: ${service.firstError.message}` : ''})`,
    );
    console.log(`  crypto floor (one process, same run): ${fmt(floor)} sign-ins/s`);
    console.log(
      `  CPU per sign-in: auth ${authCpuMs.toFixed(2)} ms, crypto floor ${floorCpuMs.toFixed(2)} ms (the floor is ${((100 * floorCpuMs) / authCpuMs).toFixed(0)}% of auth's CPU; GetNonce included)`,
    );
    // What this machine can do at best: every core doing nothing but a sign-in's crypto.
    const cores = availableParallelism();
    console.log(
      `  ceiling from the floor: ${fmt((cores * 1000) / floorCpuMs)} sign-ins/s on ${cores} cores with nothing but crypto running; ${fmt(TARGET.perSecond)}/s needs ${((floorCpuMs * TARGET.perSecond) / 1000).toFixed(1)} cores for the crypto alone (before gRPC, PostgreSQL, Redis, Kafka and the clients)`,
    );
    console.log(
      `  load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} on ${cores} cores`,
    );
    console.log(
      `  ratio service/floor: ${ratio.toFixed(2)}   targets: >= ${fmt(TARGET.perSecond)}/s ${service.perSecond >= TARGET.perSecond ? 'met' : 'NOT met'}, p99 <= ${TARGET.p99} ms ${service.p99 <= TARGET.p99 ? 'met' : 'NOT met'}, ratio >= ${TARGET.ratio} ${ratio >= TARGET.ratio ? 'met' : 'NOT met'}`,
    );
    console.log(
      `BENCH_JSON ${JSON.stringify({ bench: 'sign-in', perSecond: service.perSecond, p50: service.p50, p99: service.p99, floor, ratio, authCpuMs, floorCpuMs, errors: service.errors })}`,
    );
  } finally {
    await stopAll();
  }
}

main().catch((err) => {
  console.error(`sign-in benchmark failed: ${err.stack ?? err}`);
  process.exit(1);
});
