#!/usr/bin/env node
// Registration benchmark: device registrations per second and latency
// percentiles of RegisterDevice (gRPC, 127.0.0.1) from C parallel calls over
// several channels for D seconds, each a new device (EC P-256 device key and
// CSR, transport key, all made before the clock starts) enrolled with a
// multi-use join token. The service does the whole server side: join-token
// check and atomic use, CSR parse + signature + key policy, transport key, the
// certificate signed by the tenant CA, device + certificate + outbox event in
// one statement. In the same run, this process measures the bare crypto of
// one registration with the same library (CSR verify, transport key check,
// certificate sign), as the ceiling.
// Target (issue #4): >= 500 registrations/s on 2 cores, >= 50% of the crypto rate.
//
//   node tools/bench/registration.mjs [--seconds 10] [--concurrency 32] [--channels 4] [--no-setup]
//        [--external --jwks-port P]   (a registration already running on the bench ports, trusting
//                                      http://127.0.0.1:P as AUTH_ISSUER: e.g. under a profiler)
//        [--cpu-prof]                 (writes a V8 CPU profile of registration to tmp/bench/prof)
//        [--replicas R]               (R registration processes on one database, as R pods of the
//                                      Deployment would be; the channels are spread over them; default 1)
// Tenant: announced on Kafka as auth does (tenant.created); admin tokens from a
// JWKS served by this script (auth's issuer stand-in).
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID, webcrypto } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { setup } from '../scripts/setup.mjs';
import { childCpuSeconds, cpuOfPids, cpuSince, pidsMatching, postgresPids } from './proc-cpu.mjs';
import { client, freePort, launcher, pct, startProfiled } from './support/kit.mjs';

const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const SECONDS = opt('seconds', 10);
const CONCURRENCY = opt('concurrency', 32);
const REPLICAS = opt('replicas', 1);
const CHANNELS = Math.max(opt('channels', 4), REPLICAS);
const PROFILE = 'bench';
const TARGET = 500;

x509.cryptoProvider.set(webcrypto);

const fmt = (x) => Math.round(x).toLocaleString('en-US');

function registrationClients(addresses) {
  return Array.from({ length: CHANNELS }, (_, i) =>
    // A distinct channel option per client: grpc-js would otherwise share one subchannel.
    client('registration', 'RegistrationService', addresses[i % addresses.length], {
      'latchkey.bench.channel': i,
    }),
  );
}

/** Polls http://127.0.0.1:<port>/readyz until it answers 200. */
async function waitPortReady(port, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`a registration replica exited (${child.exitCode})`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the registration replica on ${port} was not ready in ${timeoutMs} ms`);
}

async function jwksServer() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise((r) => server.listen(opt('jwks-port', 0), '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const adminToken = (tid) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ tid, roles: ['admin'], scope: '', amr: ['pwd', 'otp'], auth_time: now })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
      .setIssuer(issuer)
      .setAudience('latchkey')
      .setSubject(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
  };
  return { server, issuer, adminToken };
}

/** A new device's request material, as a device makes it (not measured). */
async function deviceMaterial() {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=bench',
    keys,
    signingAlgorithm: alg,
  });
  const transport = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    csrPem: csr.toString('pem'),
    transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Runs `op(i)` from CONCURRENCY loops for `seconds`; rate and latency percentiles (ms). */
async function drive(op, seconds, concurrency = CONCURRENCY) {
  const latencies = [];
  let errors = 0;
  let firstError;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (performance.now() < deadline) {
        const s = performance.now();
        try {
          if ((await op(i)) === false) return;
          latencies.push(performance.now() - s);
        } catch (err) {
          errors++;
          firstError ??= err;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / elapsed,
    p50: pct(latencies, 50) ?? NaN,
    p99: pct(latencies, 99) ?? NaN,
    count: latencies.length,
    errors,
    firstError,
  };
}

const startQuietProfiled = (service, opts) => startProfiled(service, { ...opts, stdio: 'ignore' });

async function main() {
  if (!argv.includes('--no-setup')) await setup({ profile: 'dev' });
  const {
    createEvent,
    KafkaEventBus,
    TenantCreated,
  } = require('../../dist/libs/events/src/index.js');
  const crypto = require('../../dist/libs/crypto/src/index.js');

  const auth = await jwksServer();
  const authEnv = {
    AUTH_ISSUER: auth.issuer,
    AUTH_JWKS_URL: `${auth.issuer}/.well-known/jwks.json`,
  };
  const start = argv.includes('--cpu-prof') ? startQuietProfiled : launcher.startService;
  const child = argv.includes('--external')
    ? undefined
    : start('registration', {
        profile: PROFILE,
        logFile: path.join(launcher.root, 'tmp/bench/registration.log'),
        env: authEnv,
      });
  // Further replicas: the same service and database on ports of their own.
  const replicas = [];
  for (let r = 1; r < REPLICAS && child; r++) {
    const http = await freePort();
    const grpc = await freePort();
    replicas.push({
      http,
      grpc,
      child: start('registration', {
        profile: PROFILE,
        logFile: path.join(launcher.root, `tmp/bench/registration-${r}.log`),
        env: { ...authEnv, HTTP_PORT: String(http), GRPC_PORT: String(grpc) },
      }),
    });
  }
  const children = [child, ...replicas.map((r) => r.child)].filter(Boolean);
  const cpuOfChildren = () => children.reduce((sum, c) => sum + childCpuSeconds(c), 0);
  const bus = new KafkaEventBus({
    brokers: [launcher.catalog.kafka],
    clientId: 'bench-registration',
  });
  try {
    await launcher.waitReady('registration', PROFILE, { child, timeoutMs: 60_000 });
    for (const r of replicas) await waitPortReady(r.http, r.child);
    const clients = registrationClients([
      `127.0.0.1:${launcher.ports('registration', PROFILE).grpc}`,
      ...replicas.map((r) => `127.0.0.1:${r.grpc}`),
    ]);
    const tenantId = randomUUID();
    await bus.publish([
      createEvent(TenantCreated, tenantId, {
        tenantId,
        name: `bench-${tenantId.slice(0, 8)}`,
        displayName: 'Benchmark tenant',
      }),
    ]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await clients[0].call('getTenantCaCertificate', { tenantId });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the tenant CA did not appear: ${err.message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const admin = await auth.adminToken(tenantId);

    // Client-side material, before the clock.
    const needed = Math.min(40_000, Math.ceil((SECONDS + 2) * 1500));
    const material = [];
    for (let i = 0; i < needed; i++) material.push(await deviceMaterial());
    const tokens = [];
    for (let i = 0; i < Math.ceil(needed / 10_000); i++) {
      const res = await clients[0].call(
        'createJoinToken',
        { tenantId, maxUses: 10_000, ttlSeconds: 3600, description: 'benchmark' },
        admin,
      );
      tokens.push(res.token);
    }

    let next = 0;
    const register = async (i) => {
      const n = next++;
      if (n >= material.length) return false;
      const m = material[n];
      await clients[i % clients.length].call('registerDevice', {
        tenantId,
        joinToken: tokens[Math.floor(n / 10_000)],
        csrPem: m.csrPem,
        transportPublicKey: m.transportPublicKey,
        displayName: `bench-${n}`,
        osType: 'linux',
        osVersion: '6.1',
        joinType: 'JOIN_TYPE_JOINED',
      });
    };
    await drive(register, 2); // warm-up (JIT, pools, CA cache)
    // What else one registration costs on this machine, same window: PostgreSQL (every
    // postgres process but other databases' backends), the Kafka broker (the outbox
    // event), and this process (the gRPC clients).
    const pg0 = cpuOfPids(postgresPids((db) => db === 'latchkey_registration'));
    const broker0 = cpuOfPids(pidsMatching('kafka.Kafka'));
    const client0 = process.cpuUsage();
    const serviceCpu0 = cpuOfChildren();
    const service = await drive(register, SECONDS);
    const serviceCpu = cpuOfChildren() - serviceCpu0;
    const clientUsage = process.cpuUsage(client0);
    const others = {
      pg: cpuSince(pg0),
      broker: cpuSince(broker0),
      client: (clientUsage.user + clientUsage.system) / 1e6,
    };
    for (const c of clients) c.close();

    // The same crypto in this one process, as RegisterDevice does it: the CSR (parse, proof of
    // possession, key policy), the transport key (parse, key policy, thumbprint), the certificate
    // (assembled, signed, PEM).
    const ca = await crypto.DeviceCertificateAuthority.load(
      await crypto.createDeviceCa({ tenantId }),
    );
    let k = 0;
    const cryptoCpu0 = process.cpuUsage();
    const cryptoOnly = await drive(
      async () => {
        const m = material[k++ % material.length];
        const csr = await crypto.verifyDeviceCsr(m.csrPem);
        crypto.verifyTransportKey(m.transportPublicKey);
        await ca.issue({ tenantId, deviceId: randomUUID(), spki: csr.spki, validityDays: 365 });
      },
      Math.min(SECONDS, 5),
      16,
    );

    const cryptoCpuUsage = process.cpuUsage(cryptoCpu0);
    const cryptoCpu = (cryptoCpuUsage.user + cryptoCpuUsage.system) / 1e6;

    console.log(
      `registration benchmark: ${SECONDS} s, ${REPLICAS} registration process${REPLICAS > 1 ? 'es' : ''}, ${CHANNELS} gRPC channels, ${CONCURRENCY} in flight, 127.0.0.1, EC P-256 devices`,
    );
    console.log(
      `  RegisterDevice (gRPC):       ${fmt(service.rate)} registrations/s  p50 ${service.p50.toFixed(1)} ms  p99 ${service.p99.toFixed(1)} ms  (${service.count} registered, ${service.errors} errors)`,
    );
    if (service.firstError) console.log(`    first error: ${service.firstError.message}`);
    console.log(
      `  crypto of one registration: ${fmt(cryptoOnly.rate)} /s  p50 ${cryptoOnly.p50.toFixed(2)} ms  (same run, one process, @latchkey/crypto)`,
    );
    console.log(
      `  load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} on ${availableParallelism()} cores`,
    );
    const ratio = service.rate / cryptoOnly.rate;
    // CPU time per registration does not depend on what else the machine runs: the service
    // process's (not PostgreSQL's, not this client's) against the crypto's in this process.
    if (serviceCpu > 0) {
      const perRegistration = (serviceCpu / service.count) * 1000;
      const perCrypto = (cryptoCpu / cryptoOnly.count) * 1000;
      console.log(
        `  CPU per registration: service ${perRegistration.toFixed(2)} ms, crypto ${perCrypto.toFixed(2)} ms (crypto = ${((perCrypto / perRegistration) * 100).toFixed(0)}% of the service's CPU)`,
      );
      const per = (sec) => (sec / service.count) * 1000;
      const cores = availableParallelism();
      const budget = (cores * 1000) / TARGET;
      const floor = perCrypto + per(others.pg) + per(others.broker) + per(others.client);
      console.log(
        `  same window, per registration: PostgreSQL ${per(others.pg).toFixed(2)} ms, Kafka broker ${per(others.broker).toFixed(2)} ms, gRPC clients (this process) ${per(others.client).toFixed(2)} ms`,
      );
      console.log(
        `  CPU budget at ${TARGET}/s on ${cores} cores: ${budget.toFixed(2)} ms per registration for everything; crypto + PostgreSQL + broker + clients alone: ${floor.toFixed(2)} ms (${floor > budget ? 'over' : 'under'} the budget before any service code)`,
      );
    }
    console.log(
      `  service/crypto: ${(ratio * 100).toFixed(0)}%   target >= ${TARGET}/s: ${service.rate >= TARGET ? 'met' : 'NOT met'}; >= 50% of crypto: ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
    );
  } finally {
    await bus.close();
    await Promise.all(children.map((c) => launcher.stopChild(c)));
    auth.server.close();
  }
}

main().catch((err) => {
  console.error(`registration benchmark failed: ${err.stack ?? err}`);
  process.exit(1);
});
