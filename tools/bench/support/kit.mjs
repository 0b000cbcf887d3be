// What the benchmarks share (sign-in.mjs, soak.mjs, nonce.mjs, registration.mjs,
// provisioning.mjs, audit-ingest.mjs; tools/chaos too): gRPC clients, free ports, a
// process's resident memory, the services started from dist/ on ports of their own,
// and a tenant enrolled as a deployment would be — accounts seeded straight in
// auth's database, devices registered with registration (tenant CA, certificate),
// user keys provisioned by provisioning after password + TOTP — then real key
// sign-ins. Not a benchmark: tools/bench/all.mjs does not run this folder.
import { generateKeyPairSync, KeyObject, randomUUID, sign, webcrypto } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as x509 from '@peculiar/x509';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
export const launcher = require('../../scripts/services.cjs');

x509.cryptoProvider.set(webcrypto);

export const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
export const b64url = (b) => Buffer.from(b).toString('base64url');

/**
 * A promise-style client of one gRPC service; `call(method, request, bearerToken?)`.
 * `channelOptions` adds grpc-js channel options (e.g. a shorter reconnect back-off).
 */
export function client(area, service, address, channelOptions = {}) {
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
    ...channelOptions,
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

/** launcher.startService with a V8 CPU profile written to tmp/bench/prof on exit. */
export function startProfiled(service, { profile, env, stdio = 'inherit' }) {
  return spawn(
    process.execPath,
    [
      '--cpu-prof',
      `--cpu-prof-dir=${path.join(launcher.root, 'tmp/bench/prof')}`,
      path.join(launcher.root, 'dist/apps', service, 'src/main.js'),
    ],
    { cwd: launcher.root, env: launcher.serviceEnv(service, profile, env), stdio },
  );
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A process's resident memory (VmRSS, Linux /proc) in MiB, or NaN (e.g. it has exited). */
export function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Compact JWS with node:crypto (ES256/RS256), as a device agent would make it. */
export function jws(header, payload, key) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = sign('sha256', Buffer.from(input), {
    key,
    ...(header.alg === 'ES256' ? { dsaEncoding: 'ieee-p1363' } : {}),
  });
  return `${input}.${b64url(sig)}`;
}

export async function eventually(fn, what, ms = 60_000) {
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

/**
 * Starts `names` (auth among them) from dist/ with `profile` on free ports of their own,
 * pointed at each other, logs in tmp/bench/<logName>-<service>.log, and waits until each
 * answers /readyz. `start[service]` replaces launcher.startService for that service;
 * `env[service]` adds variables.
 * @returns {{ ports, issuer, profile, children, stopAll }} — ports[service] = { http, grpc };
 *   what benchTenant needs of the services is in it (`benchTenant({ ...services, name, ... })`).
 */
export async function startServices(names, { profile, logName, start = {}, env = {} }) {
  const ports = {};
  for (const s of names) ports[s] = { http: await freePort(), grpc: await freePort() };
  const issuer = `http://127.0.0.1:${ports.auth.http}`;
  const common = {
    AUTH_ISSUER: issuer,
    ...(ports.registration
      ? { REGISTRATION_GRPC_ADDRESS: `127.0.0.1:${ports.registration.grpc}` }
      : {}),
    ...(ports.provisioning
      ? { PROVISIONING_GRPC_ADDRESS: `127.0.0.1:${ports.provisioning.grpc}` }
      : {}),
    LOG_LEVEL: 'warn',
  };
  const children = {};
  for (const s of names)
    children[s] = (start[s] ?? launcher.startService)(s, {
      profile,
      env: {
        ...common,
        ...env[s],
        HTTP_PORT: String(ports[s].http),
        GRPC_PORT: String(ports[s].grpc),
      },
      logFile: path.join(launcher.root, 'tmp/bench', `${logName}-${s}.log`),
    });
  const stopAll = () => Promise.all(Object.values(children).map((c) => launcher.stopChild(c)));
  try {
    for (const s of names) {
      // A service that exits before it is ready fails the start now, not after the timeout.
      let onExit;
      const exited = new Promise((resolve, reject) => {
        onExit = (code, signal) =>
          reject(
            new Error(
              `${s} exited (${signal ?? code}) before it was ready; see tmp/bench/${logName}-${s}.log`,
            ),
          );
        const c = children[s];
        if (c.exitCode !== null || c.signalCode !== null) onExit(c.exitCode, c.signalCode);
        else c.once('exit', onExit);
      });
      try {
        await Promise.race([
          exited,
          eventually(
            async () => (await fetch(`http://127.0.0.1:${ports[s].http}/readyz`)).status === 200,
            `${s} ready`,
            180_000,
          ),
        ]);
      } finally {
        children[s].off('exit', onExit);
      }
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { ports, issuer, profile, children, stopAll };
}

/**
 * A new tenant on running services: an operator account (seeded) creates it, an admin
 * account (seeded) signs in with password + TOTP; waits for the tenant's CA.
 * `ctx` (auth's database, for seeding accounts) stays open until `ctx.close()`.
 * `clients` replaces the gRPC clients made here (authC, adminC, regC, provC: any with
 * `call(method, request, token)`); `close()` closes only clients made here.
 */
export async function benchTenant({ ports, issuer, profile, name, displayName, clients = {} }) {
  const own = {};
  const make = (key, ...args) => clients[key] ?? (own[key] = client(...args));
  const authC = make('authC', 'auth', 'AuthService', `127.0.0.1:${ports.auth.grpc}`);
  const adminC = make('adminC', 'auth', 'AdminService', `127.0.0.1:${ports.auth.grpc}`);
  const regC = make(
    'regC',
    'registration',
    'RegistrationService',
    `127.0.0.1:${ports.registration.grpc}`,
  );
  const provC = make(
    'provC',
    'provisioning',
    'ProvisioningService',
    `127.0.0.1:${ports.provisioning.grpc}`,
  );

  // Accounts straight in auth's database (as the seed does), then real sign-ins.
  const { seedContext, createAccount } = require(
    path.join(launcher.root, 'dist/apps/auth/src/seed/seed.js'),
  );
  const { totpCode } = require(path.join(launcher.root, 'dist/apps/auth/src/totp/totp.js'));
  const ctx = seedContext(launcher.serviceEnv('auth', profile));
  /** Password + TOTP sign-in: an access token. A TOTP step is accepted once per account. */
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
    { name: `${name}-${runId}`, displayName },
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
  return {
    tenantId,
    issuer,
    ctx,
    authC,
    adminC,
    regC,
    provC,
    admin,
    adminToken,
    signInPassword,
    createUser: (username, display) =>
      createAccount(ctx, tenantId, { username, displayName: display, roles: ['user'] }),
    close: () => {
      for (const c of Object.values(own)) c.close();
    },
  };
}

/**
 * A device registered with `joinToken`, or else a one-use join token of the admin: its id and
 * private key.
 */
export async function registerDevice(t, displayName, adminToken = t.adminToken, joinToken) {
  joinToken ??= (
    await t.regC.call(
      'CreateJoinToken',
      { tenantId: t.tenantId, maxUses: 1, ttlSeconds: 600, deviceNamePrefix: '' },
      adminToken,
    )
  ).token;
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const deviceKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=bench',
    keys: deviceKeys,
    signingAlgorithm: alg,
  });
  const transport = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const reg = await t.regC.call('RegisterDevice', {
    tenantId: t.tenantId,
    joinToken,
    csrPem: csr.toString('pem'),
    transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }),
    displayName,
    osType: 'linux',
    osVersion: '6.1',
    joinType: 'JOIN_TYPE_JOINED',
  });
  return { deviceId: reg.device.deviceId, devicePrivate: KeyObject.from(deviceKeys.privateKey) };
}

/**
 * A new ES256 user key of the signed-in user on `device` (BeginProvisioning with a device
 * assertion, CompleteProvisioning with proof of possession); replaces the user's earlier
 * key on that device (the default policy keeps one per user and device).
 */
export async function provisionKey(t, device, userToken) {
  const assertion = jws(
    { alg: 'ES256', kid: device.deviceId },
    {
      tid: t.tenantId,
      sub: device.deviceId,
      aud: 'latchkey-provisioning',
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
    },
    device.devicePrivate,
  );
  const { challenge } = await t.provC.call(
    'BeginProvisioning',
    { deviceId: device.deviceId, deviceAssertion: assertion },
    userToken,
  );
  const userKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const proofInput = `${b64url(JSON.stringify({ alg: 'ES256' }))}.${b64url(challenge)}`;
  const proof = `${proofInput}.${b64url(sign('sha256', Buffer.from(proofInput), { key: userKey.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
  const done = await t.provC.call(
    'CompleteProvisioning',
    {
      deviceId: device.deviceId,
      challenge,
      algorithm: 'ES256',
      proofOfPossession: proof,
      publicKeyJwk: JSON.stringify(userKey.publicKey.export({ format: 'jwk' })),
    },
    userToken,
  );
  return { userKey: userKey.privateKey, credentialId: done.credential.credentialId };
}

/**
 * User `<prefix>user-<i>` (seeded, signed in with password + TOTP) with a key on device
 * `<prefix>bench-<i>` (registered): what signInOnce needs, plus the account and its token.
 */
export async function enrolPair(t, i, prefix = '') {
  const user = await t.createUser(`${prefix}user-${i}`, `user ${i}`);
  const userToken = await t.signInPassword(user);
  const device = await registerDevice(t, `${prefix}bench-${i}`);
  const key = await provisionKey(t, device, userToken);
  return {
    deviceId: device.deviceId,
    devicePrivate: device.devicePrivate,
    userId: user.userId,
    userKey: key.userKey,
    credentialId: key.credentialId,
    account: user,
    userToken,
  };
}

/** `count` pairs enrolled one after the other (enrolPair `0` to `count - 1`, with `prefix`). */
export async function enrolPairs(t, count, prefix = '') {
  const pairs = [];
  for (let i = 0; i < count; i++) pairs.push(await enrolPair(t, i, prefix));
  return pairs;
}

/** One key sign-in of `p` with auth client `c`: GetNonce, then SignInWithKey. */
export async function signInOnce(c, t, p) {
  const { nonce } = await c.call('GetNonce', {
    tenantId: t.tenantId,
    deviceId: p.deviceId,
    purpose: 'NONCE_PURPOSE_SIGN_IN',
  });
  const now = Math.floor(Date.now() / 1000);
  const inner = jws(
    { alg: 'ES256', kid: p.credentialId },
    { iss: p.userId, aud: t.issuer, iat: now, exp: now + 120, request_nonce: nonce },
    p.userKey,
  );
  const request = jws(
    { alg: 'ES256', kid: p.deviceId },
    {
      tid: t.tenantId,
      sub: p.deviceId,
      aud: t.issuer,
      iat: now,
      nonce,
      user_assertion: inner,
    },
    p.devicePrivate,
  );
  return c.call('SignInWithKey', { request });
}
