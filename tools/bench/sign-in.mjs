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
import {
  createHash,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  randomUUID,
  sign,
  webcrypto,
} from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as x509 from '@peculiar/x509';
import { CompactEncrypt, generateKeyPair, importSPKI, jwtVerify, SignJWT } from 'jose';
import { setup } from '../scripts/setup.mjs';
import { childCpuSeconds } from './proc-cpu.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const launcher = require('../scripts/services.cjs');

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

x509.cryptoProvider.set(webcrypto);
const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const b64url = (b) => Buffer.from(b).toString('base64url');

function client(area, service, address) {
  const def = protoLoader.loadSync(
    `latchkey/${area}/v1/${service === 'AdminService' ? 'admin' : area}.proto`,
    {
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [path.join(launcher.root, 'proto')],
    },
  );
  const Ctor = grpc.loadPackageDefinition(def).latchkey[area].v1[service];
  const raw = new Ctor(address, grpc.credentials.createInsecure(), {
    'latchkey.bench.channel': Math.random(),
  });
  const call = (method, req, token) =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      raw[method](req, md, { deadline: Date.now() + 30000 }, (e, r) =>
        e ? reject(e) : resolve(r),
      );
    });
  return { call, close: () => raw.close() };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Compact JWS with node:crypto (ES256/RS256), as a device agent would make it. */
function jws(header, payload, key) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = sign('sha256', Buffer.from(input), {
    key,
    ...(header.alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' } : {}),
  });
  return `${input}.${b64url(sig)}`;
}

async function eventually(fn, what, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

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

/** launcher.startService with a V8 CPU profile written to tmp/bench/prof on exit. */
function startProfiled(service, { profile, env }) {
  return spawn(
    process.execPath,
    [
      '--cpu-prof',
      `--cpu-prof-dir=${path.join(launcher.root, 'tmp/bench/prof')}`,
      path.join(launcher.root, 'dist/apps', service, 'src/main.js'),
    ],
    { cwd: launcher.root, env: launcher.serviceEnv(service, profile, env), stdio: 'inherit' },
  );
}

async function main() {
  if (!opt['no-setup']) await setup({ profile: 'dev' });
  const ports = {};
  for (const s of ['auth', 'registration', 'provisioning'])
    ports[s] = { http: await freePort(), grpc: await freePort() };
  const issuer = `http://127.0.0.1:${ports.auth.http}`;
  const common = {
    AUTH_ISSUER: issuer,
    REGISTRATION_GRPC_ADDRESS: `127.0.0.1:${ports.registration.grpc}`,
    PROVISIONING_GRPC_ADDRESS: `127.0.0.1:${ports.provisioning.grpc}`,
    LOG_LEVEL: 'warn',
  };
  const children = {};
  for (const s of ['auth', 'registration', 'provisioning'])
    children[s] = (opt['cpu-prof'] && s === 'auth' ? startProfiled : launcher.startService)(s, {
      profile: PROFILE,
      env: {
        ...common,
        HTTP_PORT: String(ports[s].http),
        GRPC_PORT: String(ports[s].grpc),
      },
      logFile: path.join(launcher.root, 'tmp/bench', `sign-in-${s}.log`),
    });
  const stopAll = () => Promise.all(Object.values(children).map((c) => launcher.stopChild(c)));
  try {
    for (const s of Object.keys(children))
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${ports[s].http}/readyz`)).status === 200,
        `${s} ready`,
        180_000,
      );
    const authC = client('auth', 'AuthService', `127.0.0.1:${ports.auth.grpc}`);
    const adminC = client('auth', 'AdminService', `127.0.0.1:${ports.auth.grpc}`);
    const regC = client(
      'registration',
      'RegistrationService',
      `127.0.0.1:${ports.registration.grpc}`,
    );
    const provC = client(
      'provisioning',
      'ProvisioningService',
      `127.0.0.1:${ports.provisioning.grpc}`,
    );

    // Accounts straight in auth's database (as the seed does), then real sign-ins.
    const { seedContext, createAccount } = require('../../dist/apps/auth/src/seed/seed.js');
    const { totpCode } = require('../../dist/apps/auth/src/totp/totp.js');
    const ctx = seedContext(launcher.serviceEnv('auth', PROFILE));
    const signInPassword = async (a) => {
      const first = await authC.call('SignInWithPassword', {
        tenant: a.tenantId,
        username: a.username,
        password: a.password,
      });
      const done = await authC.call('CompleteMfa', {
        mfaTicket: first.mfaTicket,
        code: totpCode(a.totpSecret),
      });
      return done.accessToken;
    };
    const runId = randomUUID().slice(0, 8);
    const operator = await createAccount(ctx, '00000000-0000-0000-0000-000000000000', {
      username: `bench-op-${runId}`,
      displayName: 'bench operator',
      roles: ['operator'],
    });
    const { tenant } = await adminC.call(
      'CreateTenant',
      { name: `bench-signin-${runId}`, displayName: 'sign-in bench' },
      await signInPassword(operator),
    );
    const tenantId = tenant.tenantId;
    const admin = await createAccount(ctx, tenantId, {
      username: 'admin',
      displayName: 'admin',
      roles: ['admin'],
    });
    const adminToken = await signInPassword(admin);
    await eventually(() => regC.call('GetTenantCaCertificate', { tenantId }), 'the tenant CA');

    const pairs = [];
    for (let i = 0; i < DEVICES; i++) {
      const user = await createAccount(ctx, tenantId, {
        username: `user-${i}`,
        displayName: `user ${i}`,
        roles: ['user'],
      });
      const userToken = await signInPassword(user);
      const { token: joinToken } = await regC.call(
        'CreateJoinToken',
        { tenantId, maxUses: 1, ttlSeconds: 600, deviceNamePrefix: '' },
        adminToken,
      );
      const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
      const deviceKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: 'CN=bench',
        keys: deviceKeys,
        signingAlgorithm: alg,
      });
      const transport = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const reg = await regC.call('RegisterDevice', {
        tenantId,
        joinToken,
        csrPem: csr.toString('pem'),
        transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }),
        displayName: `bench-${i}`,
        osType: 'linux',
        osVersion: '6.1',
        joinType: 'JOIN_TYPE_JOINED',
      });
      const deviceId = reg.device.deviceId;
      const devicePrivate = (await import('node:crypto')).KeyObject.from(deviceKeys.privateKey);
      const assertion = jws(
        { alg: 'ES256', kid: deviceId },
        {
          tid: tenantId,
          sub: deviceId,
          aud: 'latchkey-provisioning',
          iat: Math.floor(Date.now() / 1000),
          jti: randomUUID(),
        },
        devicePrivate,
      );
      const { challenge } = await provC.call(
        'BeginProvisioning',
        { deviceId, deviceAssertion: assertion },
        userToken,
      );
      const userKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const proofInput = `${b64url(JSON.stringify({ alg: 'ES256' }))}.${b64url(challenge)}`;
      const proof = `${proofInput}.${b64url(sign('sha256', Buffer.from(proofInput), { key: userKey.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
      const done = await provC.call(
        'CompleteProvisioning',
        {
          deviceId,
          challenge,
          algorithm: 'ES256',
          proofOfPossession: proof,
          publicKeyJwk: JSON.stringify(userKey.publicKey.export({ format: 'jwk' })),
        },
        userToken,
      );
      pairs.push({
        deviceId,
        devicePrivate,
        userId: user.userId,
        userKey: userKey.privateKey,
        credentialId: done.credential.credentialId,
      });
    }
    await ctx.close();

    const signInOnce = async (c, p) => {
      const { nonce } = await c.call('GetNonce', {
        tenantId,
        deviceId: p.deviceId,
        purpose: 'NONCE_PURPOSE_SIGN_IN',
      });
      const t = Math.floor(Date.now() / 1000);
      const inner = jws(
        { alg: 'ES256', kid: p.credentialId },
        { iss: p.userId, aud: issuer, iat: t, exp: t + 120, request_nonce: nonce },
        p.userKey,
      );
      const request = jws(
        { alg: 'ES256', kid: p.deviceId },
        { tid: tenantId, sub: p.deviceId, aud: issuer, iat: t, nonce, user_assertion: inner },
        p.devicePrivate,
      );
      await c.call('SignInWithKey', { request });
    };
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
              await signInOnce(clients[i % clients.length], pairs[i % pairs.length]);
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
    for (const c of [...clients, authC, adminC, regC, provC]) c.close();
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
    console.log(
      `  load average: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} on ${availableParallelism()} cores`,
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
