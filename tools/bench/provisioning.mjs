#!/usr/bin/env node
// Provisioning benchmark: complete key provisionings per second (BeginProvisioning
// + CompleteProvisioning over gRPC on 127.0.0.1) and their p50/p99 latency, with C
// parallel clients for D seconds. Each provisioning is a new user on one of a
// pool of devices enrolled in registration (tenant CA, join token, certificate):
// Begin checks the token's second factor, the device with registration
// (GetDevice, GetTenantCaCertificate) and the device assertion, and issues the
// challenge; Complete parses the key, verifies the proof, consumes the challenge,
// applies the policy and limits and stores the credential with its event. User
// key pairs and tokens are made before the clock starts.
// Baseline, same run (after the services stop): the single-process crypto floor of one
// provisioning — the verifications the service must do, in a loop.
// Tokens come from a JWKS served by this script (auth's issuer stand-in),
// trusted by the registration and provisioning it starts (profile `bench`).
//   node tools/bench/provisioning.mjs [concurrency=32] [seconds=10] [--no-setup]
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { generateKeyPairSync, randomUUID, webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import * as x509 from '@peculiar/x509';
import {
  CompactSign,
  compactVerify,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
} from 'jose';
import { setup } from '../scripts/setup.mjs';
import { client, freePort, pct } from './support/kit.mjs';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const CONCURRENCY = Number(args[0] ?? 32);
const SECONDS = Number(args[1] ?? 10);
const PROFILE = 'bench';
const DEVICES = 20;

x509.cryptoProvider.set(webcrypto);

/** A device key's CSR and a transport key, as a device makes them. */
async function deviceMaterial(name) {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: alg,
  });
  const transport = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    keys,
    csrPem: csr.toString('pem'),
    transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

async function waitReady(httpPort, child) {
  for (let i = 0; i < 1200; i++) {
    if (child.exitCode !== null) throw new Error(`a service exited with ${child.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready on ${httpPort}`);
}

async function jwksServer() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' };
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const token = (sub, tid, roles = ['user']) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ tid, roles, scope: '', amr: ['pwd', 'otp'], auth_time: now })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
      .setIssuer(issuer)
      .setAudience('latchkey')
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
  };
  return { server, issuer, token };
}

/**
 * One provisioning's server-side crypto, single process: the access token verified twice
 * (Begin and Complete), the device assertion, the new key imported from its JWK and its proof
 * of possession verified. (The device certificate's chain is checked once per device, not
 * per provisioning.)
 */
async function cryptoFloor(seconds) {
  const issuer = await generateKeyPair('ES256');
  const device = await generateKeyPair('ES256');
  const user = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = user.publicKey.export({ format: 'jwk' });
  const token = await new SignJWT({ tid: 't', roles: ['user'], amr: ['pwd', 'otp'] })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setSubject('u')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(issuer.privateKey);
  const assertion = await new SignJWT({ tid: 't', jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: 'd' })
    .setSubject('d')
    .setAudience('latchkey-provisioning')
    .setIssuedAt()
    .sign(device.privateKey);
  const proof = await new CompactSign(new TextEncoder().encode('challenge'))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(user.privateKey);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await jwtVerify(token, issuer.publicKey, { algorithms: ['ES256'] });
    await jwtVerify(assertion, device.publicKey, { algorithms: ['ES256'] });
    await jwtVerify(token, issuer.publicKey, { algorithms: ['ES256'] });
    await compactVerify(proof, await importJWK(jwk, 'ES256'));
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function main() {
  if (!process.argv.includes('--no-setup')) await setup({ profile: 'dev' });
  const { startService, stopChild } = require('../scripts/services.cjs');
  const {
    createEvent,
    KafkaEventBus,
    TenantCreated,
  } = require('../../dist/libs/events/src/index.js');

  const auth = await jwksServer();
  const env = { AUTH_ISSUER: auth.issuer, AUTH_JWKS_URL: `${auth.issuer}/.well-known/jwks.json` };
  // Free ports of our own: another run of the `bench` profile may hold the fixed ones.
  const reg = { http: await freePort(), grpc: await freePort() };
  const prov = { http: await freePort(), grpc: await freePort() };
  const children = [
    startService('registration', {
      profile: PROFILE,
      logFile: 'tmp/bench/registration.log',
      env: { ...env, HTTP_PORT: String(reg.http), GRPC_PORT: String(reg.grpc) },
    }),
    startService('provisioning', {
      profile: PROFILE,
      logFile: 'tmp/bench/provisioning.log',
      env: {
        ...env,
        HTTP_PORT: String(prov.http),
        GRPC_PORT: String(prov.grpc),
        REGISTRATION_GRPC_ADDRESS: `127.0.0.1:${reg.grpc}`,
      },
    }),
  ];
  const bus = new KafkaEventBus({ brokers: ['127.0.0.1:9092'], clientId: 'bench-provisioning' });
  try {
    await waitReady(reg.http, children[0]);
    await waitReady(prov.http, children[1]);
    const registration = client('registration', 'RegistrationService', `127.0.0.1:${reg.grpc}`);
    const provisioning = client('provisioning', 'ProvisioningService', `127.0.0.1:${prov.grpc}`);
    // A tenant as auth announces it; registration makes its device CA.
    const tenantId = randomUUID();
    await bus.publish([
      createEvent(TenantCreated, tenantId, {
        tenantId,
        name: `bench-${tenantId.slice(0, 8)}`,
        displayName: 'bench',
      }),
    ]);
    for (let i = 0; ; i++) {
      const ok = await registration.call('GetTenantCaCertificate', { tenantId }).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (i > 600) throw new Error('no device CA for the bench tenant');
      await new Promise((r) => setTimeout(r, 100));
    }
    const adminToken = await auth.token(randomUUID(), tenantId, ['admin']);
    const devices = [];
    for (let i = 0; i < DEVICES; i++) {
      const m = await deviceMaterial(`bench-${i}`);
      const join = await registration.call(
        'CreateJoinToken',
        { tenantId, maxUses: 1, ttlSeconds: 600, deviceNamePrefix: '' },
        adminToken,
      );
      const res = await registration.call('RegisterDevice', {
        tenantId,
        joinToken: join.token,
        csrPem: m.csrPem,
        transportPublicKey: m.transportPublicKey,
        displayName: `bench-${i}`,
        osType: 'linux',
        osVersion: '6.1',
        joinType: 'JOIN_TYPE_REGISTERED',
      });
      devices.push({ deviceId: res.device.deviceId, key: m.keys.privateKey });
    }
    const { policy } = await provisioning.call('GetKeyPolicy', { tenantId }, adminToken);
    await provisioning.call(
      'UpdateKeyPolicy',
      { policy: { ...policy, maxKeysPerDevice: 1000, maxKeysPerUser: 10 } },
      adminToken,
    );

    // Client-side key pairs and tokens made before the clock starts.
    const prepared = [];
    for (let i = 0; i < Math.min(CONCURRENCY * SECONDS * 200, 20000); i++) {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const userId = randomUUID();
      const token = await auth.token(userId, tenantId);
      prepared.push({ pair, jwk: JSON.stringify(pair.publicKey.export({ format: 'jwk' })), token });
    }
    const begin = (req, token) => provisioning.call('BeginProvisioning', req, token);
    const complete = (req, token) => provisioning.call('CompleteProvisioning', req, token);
    let next = 0;
    const latencies = [];
    let failures = 0;
    const deadline = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline && next < prepared.length) {
          const p = prepared[next];
          const device = devices[next++ % DEVICES];
          const s = performance.now();
          try {
            const deviceAssertion = await new SignJWT({ tid: tenantId, jti: randomUUID() })
              .setProtectedHeader({ alg: 'ES256', kid: device.deviceId })
              .setSubject(device.deviceId)
              .setAudience('latchkey-provisioning')
              .setIssuedAt()
              .sign(device.key);
            const { challenge } = await begin(
              { deviceId: device.deviceId, deviceAssertion },
              p.token,
            );
            const proof = await new CompactSign(new TextEncoder().encode(challenge))
              .setProtectedHeader({ alg: 'ES256' })
              .sign(p.pair.privateKey);
            await complete(
              {
                deviceId: device.deviceId,
                challenge,
                publicKeyJwk: p.jwk,
                algorithm: 'ES256',
                proofOfPossession: proof,
              },
              p.token,
            );
            latencies.push(performance.now() - s);
          } catch (err) {
            failures++;
            if (failures < 3) console.error(String(err.message ?? err));
          }
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    console.log(
      `provisioning: ${latencies.length} completed in ${elapsed.toFixed(1)} s with ${CONCURRENCY} clients` +
        ` -> ${(latencies.length / elapsed).toFixed(0)} provisionings/s;` +
        ` latency p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms;` +
        ` failures ${failures}` +
        ` (load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')} on this machine)`,
    );
    registration.close();
    provisioning.close();
    await Promise.all(children.map((c) => stopChild(c)));
    const floor = await cryptoFloor(Math.min(SECONDS, 5));
    const rate = latencies.length / elapsed;
    console.log(
      `  crypto floor (one process, same run): ${floor.toFixed(0)} provisionings/s; ratio service/floor ${(rate / floor).toFixed(2)}`,
    );
  } finally {
    await bus.close();
    await Promise.all(children.map((c) => stopChild(c)));
    auth.server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
