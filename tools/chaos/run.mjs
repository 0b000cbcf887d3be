#!/usr/bin/env node
// Fault injection (issue #10): while real device journeys run (register, provision, sign in) for
// a fixed number of operations, one dependency or service is killed, and afterwards the stored
// state and the audit trail are checked. Everything runs on 127.0.0.1 against a private stack
// (tools/chaos/infra.mjs: PostgreSQL, Redis and Kafka of its own) and the four services started
// with profile `chaos`, auth twice. One line per scenario:
//
//   VERDICT <scenario> PASS|FAIL ops=… ok=… failed=… audit=… lost=… duplicated=… chain=… …
//
//   node tools/chaos/run.mjs [--full] [--only kafka,audit,redis,postgres,auth] [--json FILE]
//
// Short (default, part of `npm test` through tools/chaos/chaos.e2e-spec.ts): a few hundred
// operations per scenario. --full: four times as many, and Kafka down for 10 s. Exit status 0
// when every scenario passed. One run per machine at a time (fixed ports).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { auditVerdict, storedVerdict } from './check.mjs';
import * as infra from './infra.mjs';
import { benchTenant } from '../bench/support/kit.mjs';
import { Fleet, Ledger, runLoad } from './load.mjs';

const require = createRequire(import.meta.url);
const launcher = require('../scripts/services.cjs');

const { values: opt } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
  },
});
const SCALE = opt.full ? 4 : 1;
const P = infra.PROFILE;
const LOG_DIR = path.join(infra.DIR, 'logs');
const log = (m) => process.stderr.write(`[chaos] ${m}\n`);

const ports = (s) => launcher.ports(s, P);
/** The second auth instance: same database, Redis and keys, ports of its own. */
const AUTH_B = { http: ports('auth').http + 10, grpc: ports('auth').grpc + 10 };

const children = {};
function start(name) {
  const service = name === 'auth-b' ? 'auth' : name;
  const env =
    name === 'auth-b' ? { HTTP_PORT: String(AUTH_B.http), GRPC_PORT: String(AUTH_B.grpc) } : {};
  children[name] = launcher.startService(service, {
    profile: P,
    env,
    logFile: path.join(LOG_DIR, `${name}.log`),
  });
  return children[name];
}

async function ready(name) {
  const port = name === 'auth-b' ? AUTH_B.http : ports(name).http;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const child = children[name];
    if (child.exitCode !== null)
      throw new Error(`${name} exited (${child.exitCode}); see ${LOG_DIR}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready; see ${LOG_DIR}`);
    await sleep(100);
  }
}

/**
 * A tenant of its own per scenario (the kit's: operator, admin, CA), `workers` lists of
 * `perWorker` users signed in with password + TOTP, and a join token for all the devices.
 */
async function prepareTenant(fleet, name, workers, perWorker) {
  const t = await benchTenant({
    ports: {
      auth: ports('auth'),
      registration: ports('registration'),
      provisioning: ports('provisioning'),
    },
    issuer: fleet.issuer,
    profile: P,
    name: `chaos-${name}`,
    displayName: `chaos ${name}`,
    clients: { authC: fleet.anyAuth, adminC: fleet.admin, regC: fleet.reg, provC: fleet.prov },
  });
  try {
    const users = [];
    for (let i = 0; i < workers * perWorker; i++) {
      const u = await t.createUser(`user-${i}`, `user ${i}`);
      u.token = await t.signInPassword(u);
      (users[i % workers] ??= []).push(u);
    }
    const { token: joinToken } = await fleet.reg.call(
      'CreateJoinToken',
      { tenantId: t.tenantId, maxUses: 10_000, ttlSeconds: 3600, deviceNamePrefix: '' },
      t.adminToken,
    );
    return { t, users, joinToken };
  } finally {
    await t.ctx.close();
  }
}

const count = (list, pred) => list.filter(pred).length;

/**
 * A scenario: `total` operations, the fault injected once `at` of them are done (in the
 * background: the load goes on), then its own checks added to the common ones.
 */
const SCENARIOS = {
  kafka: {
    total: 300,
    async fault(ctx) {
      const pid = await infra.killKafka();
      ctx.note.killed = `kafka pid ${pid} SIGKILL`;
      await sleep(opt.full ? 10_000 : 3_000);
      await infra.startKafka();
      ctx.note.restarted = true;
    },
    expectNoFailures: true,
  },
  audit: {
    total: 300,
    async fault(ctx) {
      children.audit.kill('SIGKILL');
      await new Promise((r) => children.audit.once('exit', r));
      ctx.note.killed = 'audit SIGKILL';
      await sleep(2_000);
      start('audit');
      await ready('audit');
    },
    expectNoFailures: true,
  },
  redis: {
    total: 260,
    failurePauseMs: 1_000,
    async fault(ctx) {
      await infra.stopRedis();
      ctx.outageFrom = Date.now();
      await sleep(10_000);
      ctx.outageTo = Date.now();
      await infra.startRedis();
      ctx.returnedAt = Date.now();
    },
    check(ctx, ledger) {
      const signIns = ledger.entries.filter((e) => e.kind === 'sign-in');
      // A sign-in that got its nonce while Redis was down could not have had it checked.
      const during = signIns.filter(
        (e) => e.startedAt >= ctx.outageFrom && e.endedAt <= ctx.outageTo,
      );
      const successesDuring = count(during, (e) => e.ok);
      // Whatever failed while Redis was down (sign-ins, provisionings: device-assertion jti)
      // says so: UNAVAILABLE, not a refusal the client would take for a bad key or device.
      const notUnavailable = count(
        ledger.failed(),
        (e) =>
          e.startedAt >= ctx.outageFrom && e.endedAt <= ctx.outageTo && e.code !== 'UNAVAILABLE',
      );
      const firstOk = signIns
        .filter((e) => e.ok && e.startedAt >= ctx.returnedAt)
        .sort((a, b) => a.endedAt - b.endedAt)[0];
      const recoveredInMs = firstOk ? firstOk.endedAt - ctx.returnedAt : undefined;
      // Outside the outage (and 5 s of recovery) nothing fails.
      const failedOutside = count(
        ledger.failed(),
        (e) => e.endedAt < ctx.outageFrom || e.startedAt > ctx.returnedAt + 5_000,
      );
      return {
        figures: {
          signInsDuringOutage: during.length,
          successesDuringOutage: successesDuring,
          failedNotUnavailable: notUnavailable,
          firstSuccessAfterReturnMs: recoveredInMs ?? 'none',
          failedOutsideOutage: failedOutside,
        },
        pass:
          during.length > 0 &&
          successesDuring === 0 &&
          notUnavailable === 0 &&
          failedOutside === 0 &&
          recoveredInMs !== undefined &&
          recoveredInMs <= 5_000,
      };
    },
  },
  postgres: {
    total: 300,
    failurePauseMs: 500,
    async fault(ctx) {
      ctx.restartFrom = Date.now();
      infra.restartPostgres();
      ctx.restartedAt = Date.now();
    },
    check(ctx, ledger) {
      const failed = ledger.failed();
      const late = count(failed, (e) => e.startedAt > ctx.restartedAt + 5_000);
      const notUnavailable = count(failed, (e) => e.code !== 'UNAVAILABLE');
      const after = count(ledger.ok(), (e) => e.startedAt > ctx.restartedAt);
      return {
        figures: {
          restartMs: ctx.restartedAt - ctx.restartFrom,
          failedNotUnavailable: notUnavailable,
          failedLaterThan5s: late,
          okAfterRestart: after,
        },
        pass: notUnavailable === 0 && late === 0 && after > 0,
      };
    },
  },
  auth: {
    total: 300,
    async fault(ctx) {
      children['auth-b'].kill('SIGKILL');
      await new Promise((r) => children['auth-b'].once('exit', r));
      ctx.note.killed = 'auth instance b SIGKILL';
    },
    expectNoFailures: true,
    check(ctx, ledger) {
      const retried = count(ledger.entries, (e) => e.retried);
      return { figures: { retriedOnOtherInstance: retried }, pass: retried > 0 };
    },
  },
};

async function runScenario(name, def, fleet) {
  const workers = 8;
  const t0 = Date.now();
  const total = def.total * SCALE;
  // 6 operations per device (register, provision, 4 sign-ins), 8 keys per user, and a margin.
  const perWorker = Math.ceil(total / workers / 6 / 8) + 1;
  const tenant = await prepareTenant(fleet, name, workers, perWorker);
  const ledger = new Ledger();
  const ctx = { note: {} };
  let fault;
  await runLoad({
    fleet,
    t: tenant.t,
    joinToken: tenant.joinToken,
    users: tenant.users,
    total,
    ledger,
    pauseMs: 20,
    failurePauseMs: def.failurePauseMs ?? 200,
    onProgress: async (done) => {
      if (!fault && done >= Math.floor(total / 4)) {
        log(`${name}: fault after ${done} operations`);
        fault = def.fault(ctx);
      }
    },
  });
  await fault;
  const audit = await auditVerdict(tenant.t.tenantId, ledger, { timeoutMs: 180_000 });
  const stored = await storedVerdict(tenant.t.tenantId, ledger);
  const chain = await fleet.audit.call(
    'VerifyChain',
    { tenantId: tenant.t.tenantId, fromSeq: 0, toSeq: 0 },
    tenant.t.adminToken,
  );
  const own = def.check ? def.check(ctx, ledger) : { figures: {}, pass: true };
  const failed = ledger.failed().length;
  const failureCodes = {};
  for (const e of ledger.failed()) {
    const key = [e.kind, e.code, e.reason].filter(Boolean).join('/');
    failureCodes[key] = (failureCodes[key] ?? 0) + 1;
  }
  const chainOk = chain.ok && Number(chain.recordsVerified) === audit.records;
  const pass =
    ledger.size === total &&
    audit.lost === 0 &&
    audit.unknown === 0 &&
    audit.duplicated === 0 &&
    audit.unrecorded === 0 &&
    stored.okNotStored === 0 &&
    chainOk &&
    (!def.expectNoFailures || failed === 0) &&
    own.pass;
  const figures = {
    ops: ledger.size,
    ok: ledger.ok().length,
    failed,
    ...(failed
      ? {
          failures: Object.entries(failureCodes)
            .map(([c, n]) => `${c}:${n}`)
            .join(','),
        }
      : {}),
    register: ledger.ok('register').length,
    provision: ledger.ok('provision').length,
    signIn: ledger.ok('sign-in').length,
    committedEvents: audit.committed,
    auditRecords: audit.records,
    lost: audit.lost,
    duplicated: audit.duplicated,
    unrecorded: audit.unrecorded,
    unknown: audit.unknown,
    okNotStored: stored.okNotStored,
    chain: chainOk
      ? 'verified'
      : `BROKEN(${chain.reason || `${chain.recordsVerified} of ${audit.records}`})`,
    ...own.figures,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  // Every operation, for a look after a failure: times are ms since the epoch.
  writeFileSync(
    path.join(infra.DIR, `ledger-${name}.json`),
    JSON.stringify({ ctx, entries: ledger.entries }),
  );
  const line = `VERDICT ${name} ${pass ? 'PASS' : 'FAIL'} ${Object.entries(figures)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
  console.log(line);
  if (!pass)
    for (const e of ledger.failed().slice(0, 5))
      log(`  ${e.kind} #${e.n}: ${e.code} ${e.reason ?? ''} ${e.message}`);
  return { scenario: name, pass, figures };
}

async function main() {
  const only = opt.only ? opt.only.split(',') : Object.keys(SCENARIOS);
  for (const s of only) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}`);
  mkdirSync(LOG_DIR, { recursive: true });
  if (!opt['no-build']) (await import('../scripts/build.mjs')).build({ log });
  await infra.up();
  mkdirSync(LOG_DIR, { recursive: true });
  const results = [];
  let fleet;
  try {
    for (const s of ['registration', 'provisioning', 'auth', 'auth-b', 'audit']) start(s);
    for (const s of Object.keys(children)) await ready(s);
    fleet = new Fleet({
      registration: `127.0.0.1:${ports('registration').grpc}`,
      provisioning: `127.0.0.1:${ports('provisioning').grpc}`,
      auth: [`127.0.0.1:${ports('auth').grpc}`, `127.0.0.1:${AUTH_B.grpc}`],
      audit: `127.0.0.1:${ports('audit').grpc}`,
      issuer: `http://127.0.0.1:${ports('auth').http}`,
    });
    for (const name of only) {
      // Every scenario starts from a whole fleet (the auth one leaves instance b dead).
      for (const s of Object.keys(children))
        if (children[s].exitCode !== null || children[s].signalCode !== null) {
          start(s);
          await ready(s);
        }
      try {
        results.push(await runScenario(name, SCENARIOS[name], fleet));
      } catch (err) {
        console.log(
          `VERDICT ${name} FAIL error=${JSON.stringify(String(err.message).slice(0, 300))}`,
        );
        results.push({ scenario: name, pass: false, error: String(err.stack ?? err) });
      }
    }
  } finally {
    fleet?.close();
    await Promise.all(Object.values(children).map((c) => launcher.stopChild(c)));
    await infra.down();
  }
  if (opt.json) writeFileSync(opt.json, JSON.stringify(results, null, 2));
  const passed = results.filter((r) => r.pass).length;
  console.log(`chaos: ${passed} of ${results.length} scenarios passed`);
  process.exit(passed === results.length && results.length === only.length ? 0 : 1);
}

main().catch(async (err) => {
  console.error(`chaos run failed: ${err.stack ?? err}`);
  await Promise.all(Object.values(children).map((c) => launcher.stopChild(c)));
  await infra.down().catch(() => {});
  process.exit(1);
});
