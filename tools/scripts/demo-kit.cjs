// What the demo (`npm run demo`) and the agent's e2e tests share: accounts made
// with auth's own seed code (as `npm start` seeds the demo tenant), TOTP codes as
// an authenticator app makes them, and the built agent CLI run as a child process.
// CommonJS so that ESM scripts and jest can load it.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const { authenticator } = require('otplib');
const { root, serviceEnv } = require('./services.cjs');

const AGENT_MAIN = path.join(root, 'dist/apps/agent/src/main.js');
const SEED_MAIN = path.join(root, 'dist/apps/auth/src/seed/seed.js');
const PLATFORM_TENANT_ID = '00000000-0000-0000-0000-000000000000';

/**
 * An account with a random password and an active TOTP factor, written by auth's
 * seed code into the profile's auth database (through auth's Directory, so every
 * change has its event in the outbox). With `tenant`, a new tenant is created first
 * and the account is made in it; else in `tenantId` (default: the platform tenant).
 * Returns { tenantId, tenantName, userId, username, password, totpSecret, roles }.
 */
function seedAccount(profile, { tenant, tenantId = PLATFORM_TENANT_ID, user }) {
  const script = `
    const { seedContext, createAccount } = require(${JSON.stringify(SEED_MAIN)});
    const [tenant, tenantId, user] = JSON.parse(process.argv[1]);
    const ctx = seedContext(process.env);
    (async () => {
      const id = tenant
        ? (await ctx.directory.createTenant(tenant, { subject: 'seed', roles: ['operator'] })).id
        : tenantId;
      return createAccount(ctx, id, user);
    })()
      .then((a) => { process.stdout.write(JSON.stringify(a)); return ctx.close(); })
      .catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;
  const r = spawnSync(
    process.execPath,
    ['-e', script, JSON.stringify([tenant ?? null, tenantId, user])],
    { env: serviceEnv('auth', profile), encoding: 'utf8', timeout: 60_000 },
  );
  if (r.status !== 0) throw new Error(`seeding ${user.username} failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

/** The next TOTP code not used yet for `secret` (auth accepts each time step once): waits for a new step if needed. */
const lastStep = new Map();
async function freshCode(secret, onWait = () => undefined) {
  for (;;) {
    const step = Math.floor(Date.now() / 30_000);
    if ((lastStep.get(secret) ?? -1) < step) {
      lastStep.set(secret, step);
      return authenticator.generate(secret);
    }
    const waitMs = 30_000 - (Date.now() % 30_000) + 50;
    onWait(waitMs);
    await new Promise((r) => setTimeout(r, waitMs));
  }
}

/** Runs the built `latchkey-agent args…` with `input` on stdin (one secret per line): { code, stdout, stderr }. */
function runAgent(home, args, input = [], env = {}, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT_MAIN, ...args], {
      env: { ...process.env, LATCHKEY_AGENT_HOME: home, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d.toString()));
    child.stderr.on('data', (d) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input.map((l) => `${l}\n`).join(''));
  });
}

module.exports = { AGENT_MAIN, PLATFORM_TENANT_ID, seedAccount, freshCode, runAgent };
