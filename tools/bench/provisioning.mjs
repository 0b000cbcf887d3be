#!/usr/bin/env node
// Provisioning benchmark: completed key provisionings per second and latency
// percentiles of CompleteProvisioning (gRPC, 127.0.0.1), with C parallel
// clients for D seconds. Each provisioning is a new user on one of a pool of
// registered devices: an ES256 key made beforehand (client-side work is not
// measured), a challenge in the platform nonce store bound to user + device
// (what BeginProvisioning issues), and the proof signed over it. The service
// does the whole server side: token check, JWK parse, proof verify, atomic
// challenge consumption, policy, per-device/per-user locks and limits, the
// credential and its event in one transaction.
// Tokens come from a JWKS served by this script (auth's issuer stand-in).
//   node tools/bench/provisioning.mjs [concurrency=32] [seconds=10] [--no-setup]
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID, webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, Metadata } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as x509 from '@peculiar/x509';
import { CompactSign, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { setup } from '../scripts/setup.mjs';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const CONCURRENCY = Number(args[0] ?? 32);
const SECONDS = Number(args[1] ?? 10);
const PROFILE = 'bench';
const DEVICES = 20;

const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

x509.cryptoProvider.set(webcrypto);

/** A promise-returning gRPC client of one latchkey service (loaded from proto/, as the services do). */
function grpcClient(area, service, address) {
  const def = loadSync(`latchkey/${area}/v1/${area}.proto`, {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [fileURLToPath(new URL('../../proto', import.meta.url))],
  });
  const Ctor = loadPackageDefinition(def).latchkey[area].v1[service];
  const raw = new Ctor(address, credentials.createInsecure());
  const call =
    (method) =>
    (req, md = new Metadata()) =>
      new Promise((resolve, reject) =>
        raw[method](req, md, { deadline: Date.now() + 15000 }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      );
  return { call, close: () => raw.close() };
}

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
    csrPem: csr.toString('pem'),
    transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
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

async function main() {
  if (!process.argv.includes('--no-setup')) await setup({ profile: 'dev' });
  const {
    ports,
    serviceEnv,
    startService,
    stopChild,
    waitReady,
  } = require('../scripts/services.cjs');
  const { NonceStore } = require('../../dist/libs/service-kit/src/index.js');
  const { Redis } = require('ioredis');

  const auth = await jwksServer();
  const children = [
    startService('registration', { profile: PROFILE, logFile: 'tmp/bench/registration.log' }),
    startService('provisioning', {
      profile: PROFILE,
      logFile: 'tmp/bench/provisioning.log',
      env: { AUTH_ISSUER: auth.issuer, AUTH_JWKS_URL: `${auth.issuer}/.well-known/jwks.json` },
    }),
  ];
  const redis = new Redis(serviceEnv('provisioning', PROFILE).REDIS_URL);
  try {
    await waitReady('registration', PROFILE);
    await waitReady('provisioning', PROFILE);
    const tenantId = randomUUID();
    const registration = grpcClient(
      'registration',
      'RegistrationService',
      `127.0.0.1:${ports('registration', PROFILE).grpc}`,
    );
    const provisioning = grpcClient(
      'provisioning',
      'ProvisioningService',
      `127.0.0.1:${ports('provisioning', PROFILE).grpc}`,
    );
    const devices = [];
    for (let i = 0; i < DEVICES; i++) {
      const m = await deviceMaterial(`bench-${i}`);
      const res = await registration.call('RegisterDevice')({
        tenantId,
        joinToken: 'bench',
        csrPem: m.csrPem,
        transportPublicKey: m.transportPublicKey,
        displayName: `bench-${i}`,
        osType: 'linux',
        osVersion: '6.1',
        joinType: 'JOIN_TYPE_REGISTERED',
      });
      devices.push(res.device.deviceId);
    }
    const adminMd = new Metadata();
    adminMd.set('authorization', `Bearer ${await auth.token(randomUUID(), tenantId, ['admin'])}`);
    const { policy } = await provisioning.call('GetKeyPolicy')({ tenantId }, adminMd);
    await provisioning.call('UpdateKeyPolicy')(
      { policy: { ...policy, maxKeysPerDevice: 1000, maxKeysPerUser: 10 } },
      adminMd,
    );

    // Client-side material made before the clock starts.
    const budget = CONCURRENCY * SECONDS * 400;
    const prepared = [];
    for (let i = 0; i < Math.min(budget, 20000); i++) {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const userId = randomUUID();
      const md = new Metadata();
      md.set('authorization', `Bearer ${await auth.token(userId, tenantId)}`);
      prepared.push({
        pair,
        jwk: JSON.stringify(pair.publicKey.export({ format: 'jwk' })),
        userId,
        md,
      });
    }
    const nonces = new NonceStore(redis, 300);
    const complete = provisioning.call('CompleteProvisioning');
    let next = 0;
    const latencies = [];
    let failures = 0;
    const deadline = performance.now() + SECONDS * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline && next < prepared.length) {
          const p = prepared[next];
          const deviceId = devices[next++ % DEVICES];
          const { nonce } = await nonces.issue({
            tenantId,
            deviceId: `${deviceId}/users/${p.userId}`,
            purpose: 'provisioning',
          });
          const proof = await new CompactSign(new TextEncoder().encode(nonce))
            .setProtectedHeader({ alg: 'ES256' })
            .sign(p.pair.privateKey);
          const s = performance.now();
          try {
            await complete(
              {
                deviceId,
                challenge: nonce,
                publicKeyJwk: p.jwk,
                algorithm: 'ES256',
                proofOfPossession: proof,
              },
              p.md,
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
        ` failures ${failures}`,
    );
    registration.close();
    provisioning.close();
  } finally {
    redis.disconnect();
    await Promise.all(children.map((c) => stopChild(c)));
    auth.server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
