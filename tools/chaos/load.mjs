// The chaos suite's load generator: real device journeys (register a device with registration,
// provision a user key with provisioning after password + TOTP, sign in with the keys at auth)
// for a fixed number of operations, each outcome written to a ledger that the verdicts check
// against what the services stored and what audit recorded.
import { generateKeyPairSync, KeyObject, randomUUID, webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import * as x509 from '@peculiar/x509';
import { client, jws, proofOfPossession } from './grpc.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');

x509.cryptoProvider.set(webcrypto);

/** One operation's outcome. `ids` names what it stored (deviceId, credentialId or sessionId). */
export class Ledger {
  entries = [];
  add(entry) {
    this.entries.push(entry);
  }
  ok(kind) {
    return this.entries.filter((e) => e.ok && (!kind || e.kind === kind));
  }
  failed(kind) {
    return this.entries.filter((e) => !e.ok && (!kind || e.kind === kind));
  }
  get size() {
    return this.entries.length;
  }
}

const codeName = (code) =>
  Object.entries(grpc.status).find(([, v]) => v === code)?.[0] ?? String(code);

/**
 * The services of one run. `auth` is a list of addresses (several instances): sign-ins go
 * round-robin over them, and a call an instance could not take (UNAVAILABLE with no answer from
 * it) is retried once on the next one — as a client behind a load balancer would be.
 */
export class Fleet {
  constructor({ registration, provisioning, auth, audit, issuer }) {
    this.issuer = issuer;
    this.reg = client('registration', 'RegistrationService', registration);
    this.prov = client('provisioning', 'ProvisioningService', provisioning);
    this.auths = auth.map((a) => client('auth', 'AuthService', a));
    this.admin = client('auth', 'AdminService', auth[0]);
    this.audit = client('audit', 'AuditService', audit);
    this.next = 0;
  }

  close() {
    for (const c of [this.reg, this.prov, ...this.auths, this.admin, this.audit]) c.close();
  }

  /** Calls auth on the next instance; on a transport failure (no answer), once on another. */
  async authCall(method, req, token, info) {
    const i = this.pick();
    try {
      return await this.auths[i].call(method, req, token);
    } catch (err) {
      if (!this.noAnswer(err)) throw err;
      if (info) info.retried = true;
      return this.auths[(i + 1) % this.auths.length].call(method, req, token);
    }
  }

  /** Round-robin over the auth instances. */
  pick() {
    return this.next++ % this.auths.length;
  }

  /** UNAVAILABLE without a latchkey reason: the instance did not answer (not a service's refusal). */
  noAnswer(err) {
    return (
      this.auths.length > 1 &&
      err.code === grpc.status.UNAVAILABLE &&
      !err.metadata?.get('latchkey-reason')?.length
    );
  }

  async passwordToken(account) {
    const first = await this.authCall('SignInWithPassword', {
      tenant: account.tenantId,
      username: account.username,
      password: account.password,
    });
    const done = await this.authCall('CompleteMfa', {
      mfaTicket: first.mfaTicket,
      code: account.totp(),
    });
    return done.accessToken;
  }
}

/** A device of the load: its keys, and once provisioned, the user key. */
async function registerDevice(fleet, tenantId, joinToken, name) {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: alg,
  });
  const transport = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const reg = await fleet.reg.call('RegisterDevice', {
    tenantId,
    joinToken,
    csrPem: csr.toString('pem'),
    transportPublicKey: transport.publicKey.export({ type: 'spki', format: 'pem' }),
    displayName: name,
    osType: 'linux',
    osVersion: '6.1',
    joinType: 'JOIN_TYPE_JOINED',
  });
  return {
    deviceId: reg.device.deviceId,
    devicePrivate: KeyObject.from(keys.privateKey),
    tenantId,
  };
}

async function provision(fleet, device, userToken) {
  const assertion = jws(
    { alg: 'ES256', kid: device.deviceId },
    {
      tid: device.tenantId,
      sub: device.deviceId,
      aud: 'latchkey-provisioning',
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
    },
    device.devicePrivate,
  );
  const { challenge } = await fleet.prov.call(
    'BeginProvisioning',
    { deviceId: device.deviceId, deviceAssertion: assertion },
    userToken,
  );
  const userKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const done = await fleet.prov.call(
    'CompleteProvisioning',
    {
      deviceId: device.deviceId,
      challenge,
      algorithm: 'ES256',
      proofOfPossession: proofOfPossession(challenge, userKey.privateKey),
      publicKeyJwk: JSON.stringify(userKey.publicKey.export({ format: 'jwk' })),
    },
    userToken,
  );
  device.userKey = userKey.privateKey;
  device.credentialId = done.credential.credentialId;
}

async function signInOnce(fleet, device, userId, info, i) {
  const auth = fleet.auths[i];
  const { nonce } = await auth.call('GetNonce', {
    tenantId: device.tenantId,
    deviceId: device.deviceId,
    purpose: 'NONCE_PURPOSE_SIGN_IN',
  });
  info.nonceAt = Date.now();
  const t = Math.floor(Date.now() / 1000);
  const inner = jws(
    { alg: 'ES256', kid: device.credentialId },
    { iss: userId, aud: fleet.issuer, iat: t, exp: t + 120, request_nonce: nonce },
    device.userKey,
  );
  const request = jws(
    { alg: 'ES256', kid: device.deviceId },
    {
      tid: device.tenantId,
      sub: device.deviceId,
      aud: fleet.issuer,
      iat: t,
      nonce,
      user_assertion: inner,
    },
    device.devicePrivate,
  );
  const res = await auth.call('SignInWithKey', { request });
  const claims = JSON.parse(Buffer.from(res.tokens.idToken.split('.')[1], 'base64url'));
  return claims.sid;
}

/**
 * A key sign-in on one auth instance. When that instance does not answer, the client cannot know
 * whether its nonce was consumed: it starts over (new nonce) on the next instance, once.
 */
async function signIn(fleet, device, userId, info) {
  const i = fleet.pick();
  try {
    return await signInOnce(fleet, device, userId, info, i);
  } catch (err) {
    if (!fleet.noAnswer(err)) throw err;
    info.retried = true;
    return signInOnce(fleet, device, userId, info, (i + 1) % fleet.auths.length);
  }
}

/**
 * Runs `total` operations over parallel journeys, one per entry of `users` (a list of users
 * each): register a device, provision a key on it for the journey's current user, then sign in
 * `signInsPerDevice` times; again with a new device until the count is reached. A user gets at
 * most `keysPerUser` keys (the tenant's key limit is 10), then the journey moves to its next user. `onProgress(done)` is awaited after every operation (faults are injected
 * from there); `pauseMs` spaces a worker's operations so the load spans the fault, and
 * `failurePauseMs` is its back-off after a failure.
 */
export async function runLoad({
  fleet,
  tenantId,
  joinToken,
  users,
  total,
  signInsPerDevice = 4,
  keysPerUser = 8,
  pauseMs = 20,
  failurePauseMs = 200,
  ledger,
  onProgress = async () => {},
}) {
  let started = 0;
  const claim = () => (started < total ? ++started : 0);
  const worker = async (own, w) => {
    let device;
    let signIns = 0;
    let keys = 0;
    for (let n = claim(); n; n = claim()) {
      let kind;
      if (!device?.deviceId) kind = 'register';
      else if (!device.credentialId) kind = 'provision';
      else if (signIns < signInsPerDevice) kind = 'sign-in';
      else {
        device = undefined;
        kind = 'register';
      }
      const entry = { n, kind, worker: w, startedAt: Date.now(), ok: false };
      try {
        if (kind === 'register') {
          device = await registerDevice(fleet, tenantId, joinToken, `chaos-${w}-${n}`);
          entry.ids = { deviceId: device.deviceId };
          signIns = 0;
        } else if (kind === 'provision') {
          const user = own[Math.floor(keys / keysPerUser)];
          if (!user) throw new Error(`journey ${w} has no user left for another key`);
          await provision(fleet, device, user.token);
          device.userId = user.userId;
          keys++;
          entry.ids = { credentialId: device.credentialId };
        } else {
          const sid = await signIn(fleet, device, device.userId, entry);
          entry.ids = { sessionId: sid };
          signIns++;
        }
        entry.ok = true;
      } catch (err) {
        entry.code = codeName(err.code);
        entry.reason = err.metadata?.get?.('latchkey-reason')?.[0];
        entry.message = String(err.details ?? err.message).slice(0, 200);
        // A failed registration or provisioning leaves the device to redo that step.
        if (kind === 'register') device = undefined;
        await sleep(failurePauseMs); // a client's back-off
      }
      entry.endedAt = Date.now();
      ledger.add(entry);
      await onProgress(ledger.size);
      if (pauseMs) await sleep(pauseMs);
    }
  };
  await Promise.all(users.map((u, i) => worker(u, i)));
}
