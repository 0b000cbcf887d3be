// The chaos suite's load generator: real device journeys (register a device with registration,
// provision a user key with provisioning after password + TOTP, sign in with the keys at auth)
// for a fixed number of operations, each outcome written to a ledger that the verdicts check
// against what the services stored and what audit recorded.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { client, provisionKey, registerDevice, signInOnce } from '../bench/support/kit.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');

// Reconnect quickly after an instance comes back (grpc-js's back-off grows to 120 s).
const RECONNECT = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1000,
};

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
    this.reg = client('registration', 'RegistrationService', registration, RECONNECT);
    this.prov = client('provisioning', 'ProvisioningService', provisioning, RECONNECT);
    this.auths = auth.map((a) => client('auth', 'AuthService', a, RECONNECT));
    this.admin = client('auth', 'AdminService', auth[0], RECONNECT);
    this.audit = client('audit', 'AuditService', audit, RECONNECT);
    this.next = 0;
    /** Any auth instance (round-robin, retried on another): for the kit's tenant set-up. */
    this.anyAuth = { call: (method, req, token) => this.authCall(method, req, token) };
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
}

/** GetNonce + SignInWithKey on auth instance `i`; the session id, from the ID token. */
async function signInOnceAt(fleet, t, device, i) {
  const res = await signInOnce(fleet.auths[i], t, device);
  return JSON.parse(Buffer.from(res.tokens.idToken.split('.')[1], 'base64url')).sid;
}

/**
 * A key sign-in on one auth instance. When that instance does not answer, the client cannot know
 * whether its nonce was consumed: it starts over (new nonce) on the next instance, once.
 */
async function signIn(fleet, t, device, info) {
  const i = fleet.pick();
  try {
    return await signInOnceAt(fleet, t, device, i);
  } catch (err) {
    if (!fleet.noAnswer(err)) throw err;
    info.retried = true;
    return signInOnceAt(fleet, t, device, (i + 1) % fleet.auths.length);
  }
}

/**
 * Runs `total` operations for tenant `t` (tools/bench/support/kit.mjs benchTenant) over
 * parallel journeys, one per entry of `users` (a list of users each): register a device with
 * `joinToken`, provision a key on it for the journey's current user, then sign in
 * `signInsPerDevice` times; again with a new device until the count is reached. A user gets at
 * most `keysPerUser` keys (the tenant's key limit is 10), then the journey moves to its next
 * user. `onProgress(done)` is awaited after every operation (faults are injected from there);
 * `pauseMs` spaces a worker's operations so the load spans the fault, and `failurePauseMs` is
 * its back-off after a failure.
 */
export async function runLoad({
  fleet,
  t,
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
          device = await registerDevice(t, `chaos-${w}-${n}`, t.adminToken, joinToken);
          entry.ids = { deviceId: device.deviceId };
          signIns = 0;
        } else if (kind === 'provision') {
          const user = own[Math.floor(keys / keysPerUser)];
          if (!user) throw new Error(`journey ${w} has no user left for another key`);
          Object.assign(device, await provisionKey(t, device, user.token), {
            userId: user.userId,
          });
          keys++;
          entry.ids = { credentialId: device.credentialId };
        } else {
          const sid = await signIn(fleet, t, device, entry);
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
