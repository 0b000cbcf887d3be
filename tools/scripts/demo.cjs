// `npm run demo`: the device agent's whole journey against the running stack of
// `npm start`. A fresh tenant and its admin are made with auth's own seed code (as
// `npm start` seeds the demo tenant: nothing to copy from its output); the admin
// creates the user alice through the admin API, alice enrols TOTP; then the built
// `latchkey-agent` goes register → provision → login → refresh → (admin revokes the
// key) → login refused → reset-pin → login, and the tenant's audit trail is printed
// and its chain verified with `latchkey-agent audit verify`.
//
// runDemo() is what the CLI (demo.mjs) and the e2e test (apps/agent/e2e) call.
// CommonJS so that ESM scripts and jest can load it.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { existsSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { catalog, ports, root } = require('./services.cjs');
const { AGENT_MAIN, freshCode, runAgent, seedAccount } = require('./demo-kit.cjs');

const PIN = 'Demo-pin-2468';
/** Where the demo leaves the AIK in the TPM (the agent's default --aik-handle). */
const AIK_HANDLE = '0x81010002';
const NEW_PIN = 'Demo-pin-1357';

/** A failed step of the demo: what was expected, what happened. */
class DemoError extends Error {
  constructor(message, step) {
    super(message);
    this.name = 'DemoError';
    this.step = step;
  }
}

/** The profile of tools/services.json whose ports are shifted by `portOffset` (its databases hold the accounts). */
function profileOf(portOffset) {
  const names = Object.keys(catalog.profiles).filter(
    (n) => catalog.profiles[n].portOffset === portOffset,
  );
  // dev and bench share the offset 0 and the databases: dev is the stack of `npm start`.
  const name = names.includes('dev') ? 'dev' : names[0];
  if (!name)
    throw new DemoError(
      `no profile of tools/services.json has the port offset ${portOffset} (${Object.entries(
        catalog.profiles,
      )
        .map(([n, p]) => `${n} ${p.portOffset}`)
        .join(', ')})`,
    );
  return name;
}

const unique = (p) => `${p}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** JSON over the services' HTTP APIs (the admin's side of the demo). */
async function api(profile, service, verb, route, { token, body, ok = [200, 201, 204] } = {}) {
  const url = `http://127.0.0.1:${ports(service, profile).http}${route}`;
  let res;
  try {
    res = await fetch(url, {
      method: verb,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new DemoError(
      `${service} is not reachable at ${url} (${err.cause?.code ?? err.message}): is the stack of \`npm start\` running?`,
    );
  }
  const text = await res.text();
  const json = /json/.test(res.headers.get('content-type') ?? '') && text ? JSON.parse(text) : {};
  if (!ok.includes(res.status))
    throw new DemoError(
      `${verb} ${route} answered ${res.status}: ${json.reason ?? ''} ${json.detail ?? text}`.trim(),
    );
  return { status: res.status, json };
}

/** Starts a software TPM (swtpm) on free local ports; its TCTI for the agent. */
async function startSwtpm() {
  const freePort = () =>
    new Promise((resolve, reject) => {
      const s = net.createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'latchkey-demo-swtpm-'));
  for (let launch = 0; launch < 5; launch++) {
    const port = await freePort();
    const child = spawn(
      'swtpm',
      [
        ...['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`],
        ...['--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`],
        ...['--flags', 'not-need-init,startup-clear', '--tpmstate', `dir=${dir}`],
      ],
      { stdio: 'ignore' },
    );
    child.on('error', () => undefined);
    const tcti = `swtpm:host=127.0.0.1,port=${port}`;
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      const r = spawnSync('tpm2_getrandom', ['8', '--hex'], {
        env: { ...process.env, TPM2TOOLS_TCTI: tcti },
        stdio: 'ignore',
      });
      if (r.error?.code === 'ENOENT') {
        child.kill();
        throw new DemoError(
          '--tpm needs tpm2-tools (tpm2_getrandom …): apt-get install tpm2-tools',
        );
      }
      if (r.status === 0)
        return {
          tcti,
          stop: () => {
            child.kill();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill();
    if (child.exitCode === null && launch > 0) break;
  }
  throw new DemoError('swtpm did not start (is it installed? apt-get install swtpm swtpm-tools)');
}

/**
 * Runs the journey. Options: portOffset (0: the stack of `npm start`), transport
 * ('grpc' | 'https'), tpm (true: a swtpm started here; { tcti }: that TPM),
 * print (each line of the narration), keystore (the agent's folder; default a
 * temporary one, removed at the end). Resolves with { tenantId, deviceId,
 * credentialIds, steps: [{ name, args, code, stdout, stderr }], trail: [records],
 * verification: { code, ok, output } }; a step that does not end as it should
 * rejects with a DemoError.
 */
async function runDemo(options = {}) {
  const {
    portOffset = 0,
    transport = 'grpc',
    print = (line) => process.stdout.write(`${line}\n`),
  } = options;
  if (transport !== 'grpc' && transport !== 'https')
    throw new DemoError('--transport is grpc or https');
  const profile = profileOf(portOffset);
  if (!existsSync(AGENT_MAIN))
    throw new DemoError(
      `the agent is not built (${AGENT_MAIN}): run \`npm start\` or \`node tools/scripts/build.mjs\``,
    );
  await Promise.all(
    ['registration', 'provisioning', 'auth', 'audit'].map((s) => api(profile, s, 'GET', '/readyz')),
  );

  const tempHome = options.keystore
    ? undefined
    : mkdtempSync(path.join(os.tmpdir(), 'latchkey-demo-'));
  const home = options.keystore ?? path.join(tempHome, 'keystore');
  const swtpm = options.tpm === true ? await startSwtpm() : undefined;
  const tcti = swtpm?.tcti ?? (options.tpm ? options.tpm.tcti : undefined);
  const steps = [];
  const waitNote = (ms) =>
    print(
      `  (waiting ${Math.ceil(ms / 1000)} s for the next authenticator code: auth takes each code once)`,
    );
  const say = (title) => print(`\n== ${title}`);

  try {
    // 1. The tenant and its admin (auth's seed code), the user alice (admin API) with TOTP.
    say('a fresh tenant, its admin and the user alice (password + TOTP)');
    const tenantName = unique('demo');
    const admin = seedAccount(profile, {
      tenant: { name: tenantName, displayName: `Agent demo ${tenantName}` },
      user: { username: 'admin', displayName: 'Demo admin', roles: ['admin', 'user'] },
    });
    const tenantId = admin.tenantId;
    print(
      `  tenant ${tenantName} (${tenantId}); admin "admin" with password and TOTP (auth's seed code)`,
    );
    const signIn = async (account) => {
      const first = await api(profile, 'auth', 'POST', '/v1/sign-in/password', {
        body: { tenant: tenantId, username: account.username, password: account.password },
      });
      const done = await api(profile, 'auth', 'POST', '/v1/sign-in/mfa', {
        body: {
          mfaTicket: first.json.mfaTicket,
          code: await freshCode(account.totpSecret, waitNote),
        },
      });
      return done.json.accessToken;
    };
    const adminToken = await signIn(admin);
    const alice = { username: 'alice', password: `pw-${unique('alice')}-long` };
    const created = await api(profile, 'auth', 'POST', `/v1/tenants/${tenantId}/users`, {
      token: adminToken,
      body: {
        username: 'alice',
        displayName: 'Alice Demo',
        roles: ['user'],
        password: alice.password,
      },
    });
    alice.userId = created.json.user.userId;
    const ticket = (
      await api(profile, 'auth', 'POST', '/v1/sign-in/password', {
        body: { tenant: tenantId, username: 'alice', password: alice.password },
      })
    ).json;
    if (!ticket.totpEnrollmentRequired) throw new DemoError('alice has a TOTP factor already');
    alice.totpSecret = (
      await api(profile, 'auth', 'POST', '/v1/sign-in/totp-enrollment', {
        body: { mfaTicket: ticket.mfaTicket },
      })
    ).json.secret;
    await api(profile, 'auth', 'POST', '/v1/sign-in/mfa', {
      body: { mfaTicket: ticket.mfaTicket, code: await freshCode(alice.totpSecret, waitNote) },
    });
    print(`  user alice (${alice.userId}) created by the admin; TOTP enrolled with her first code`);
    // registration makes the tenant's device CA when it hears of the tenant (Kafka).
    for (let i = 0; ; i++) {
      const ca = await api(
        profile,
        'registration',
        'GET',
        `/v1/tenants/${tenantId}/ca-certificate`,
        {
          ok: [200, 404, 412],
        },
      );
      if (ca.status === 200) break;
      if (i > 120) throw new DemoError('the tenant device CA did not appear within 60 s');
      await new Promise((r) => setTimeout(r, 500));
    }
    const joinToken = (
      await api(profile, 'registration', 'POST', `/v1/tenants/${tenantId}/join-tokens`, {
        token: adminToken,
        body: { maxUses: 1, ttlSeconds: 600 },
      })
    ).json.token;
    print('  the admin made a one-use join token for the device');

    // The TPM: an AIK (as a device's provisioning leaves one), certified by a local AIK CA
    // that the tenant's admin trusts for devices and user keys.
    let aikFlags = [];
    if (tcti) {
      say('the TPM: an AIK certified by a local AIK CA; the tenant requires TPM keys');
      const tpmLib = require(path.join(root, 'dist/libs/tpm/src'));
      const spki = tpmLib.Tpm2Tools.session(tcti, (tools) => {
        tools.createKey('aik', 'aik');
        tools.persist('aik', AIK_HANDLE);
        return tools.spki(AIK_HANDLE);
      });
      const ca = await tpmLib.tpmRootAndAikCertificate(spki);
      const aikFile = path.join(tempHome ?? path.dirname(home), 'aik.pem');
      writeFileSync(aikFile, ca.aikPem);
      aikFlags = ['--aik-cert', aikFile];
      for (const [service, route] of [
        ['registration', `/v1/tenants/${tenantId}/device-policy`],
        ['provisioning', `/v1/tenants/${tenantId}/key-policy`],
      ]) {
        const { policy } = (await api(profile, service, 'GET', route, { token: adminToken })).json;
        await api(profile, service, 'PUT', route, {
          token: adminToken,
          body: { ...policy, requireTpm: true, tpmRootCertificatesPem: [ca.rootPem] },
        });
      }
      print(`  AIK at ${AIK_HANDLE} (${tcti}); ${ca.rootSubject} is the tenant's TPM root`);
      print('  device policy and key policy: TPM required');
    }

    // 2. The agent.
    const tpmFlags = tcti ? ['--tpm', '--tcti', tcti] : [];
    const step = async (name, title, args, input, expected) => {
      say(`${steps.length + 1}. ${title}`);
      print(
        `  $ latchkey-agent ${args.join(' ')}${input.length ? `   (${input.length} secret lines on stdin)` : ''}`,
      );
      const r = await runAgent(home, args, input);
      const output = `${r.stdout}${r.stderr}`.trimEnd();
      if (output) print(output.replace(/^/gm, '  | '));
      const record = { name, args, ...r };
      steps.push(record);
      const ok = expected === 'refused' ? r.code === 1 : r.code === 0;
      if (!ok)
        throw new DemoError(
          `${name}: expected ${expected === 'refused' ? 'a refusal (exit 1)' : 'success (exit 0)'}, got exit ${r.code}: ${r.stderr.trim()}`,
          record,
        );
      print(expected === 'refused' ? `  -> refused, as it should be (exit ${r.code})` : '  -> ok');
      return r;
    };

    const reg = await step(
      'register',
      `register the device (${transport}${tcti ? '; its keys made in the TPM, attested by the AIK' : ''})`,
      [
        'register',
        ...['--tenant', tenantId, '--name', 'DEMO-LAPTOP', '--transport', transport],
        ...['--plaintext', '--port-offset', String(portOffset)],
        ...tpmFlags,
        ...aikFlags,
      ],
      [joinToken],
    );
    const deviceId = /registered device (\S+)/.exec(reg.stdout)?.[1];
    const provision = await step(
      'provision',
      'provision a user key for alice: password + TOTP, then a new PIN',
      ['provision', '--user', 'alice', ...tpmFlags],
      [alice.password, await freshCode(alice.totpSecret, waitNote), PIN, PIN],
    );
    const firstKey = /user key (\S+)/.exec(provision.stdout)?.[1];
    await step('login', 'log in with the PIN (key sign-in)', ['login'], [PIN]);
    await step('refresh', 'refresh the session with the PRT', ['refresh'], []);

    say(`${steps.length + 1}. the admin revokes alice's key (lost laptop)`);
    await api(
      profile,
      'provisioning',
      'POST',
      `/v1/tenants/${tenantId}/credentials/${firstKey}/revoke`,
      {
        token: adminToken,
        body: { reason: 'demo: laptop reported lost' },
      },
    );
    print(`  POST /v1/tenants/${tenantId}/credentials/${firstKey}/revoke -> revoked`);
    steps.push({ name: 'revoke', args: [], code: 0, stdout: '', stderr: '' });

    await step(
      'login-refused',
      'log in again: refused, the key is revoked',
      ['login'],
      [PIN],
      'refused',
    );
    const reset = await step(
      'reset-pin',
      'reset the PIN: password + TOTP, a new key under a new PIN',
      ['reset-pin', '--user', 'alice', ...tpmFlags],
      [alice.password, await freshCode(alice.totpSecret, waitNote), NEW_PIN, NEW_PIN],
    );
    const secondKey = /new user key (\S+)/.exec(reset.stdout)?.[1];
    await step('login-again', 'log in with the new PIN', ['login'], [NEW_PIN]);

    // 3. The audit trail, once the last sign-in has reached it, and its verification.
    say("the tenant's audit trail (OCSF class, activity, outcome, user, device)");
    const common = [
      '--tenant',
      tenantId,
      '--transport',
      transport,
      '--plaintext',
      '--port-offset',
      String(portOffset),
    ];
    const env = { LATCHKEY_ACCESS_TOKEN: adminToken };
    const complete = (records) => {
      const codes = records.map((x) => x.record.metadata.event_code);
      const lastProvisioned = codes.lastIndexOf('dev.latchkey.credential.provisioned.v1');
      return (
        lastProvisioned > 0 &&
        codes.indexOf('dev.latchkey.auth.sign_in.succeeded.v1', lastProvisioned) > lastProvisioned
      );
    };
    let trail = [];
    for (const deadline = Date.now() + 120_000; ;) {
      const r = await runAgent(home, ['audit', 'tail', '--json', ...common], [], env);
      if (r.code !== 0) throw new DemoError(`audit tail failed: ${r.stderr.trim()}`);
      trail = r.stdout.trim()
        ? r.stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
        : [];
      if (complete(trail)) break;
      if (Date.now() > deadline)
        throw new DemoError('the last sign-in did not reach the audit trail within 120 s');
      await new Promise((r) => setTimeout(r, 1000));
    }
    const tail = await runAgent(home, ['audit', 'tail', ...common], [], env);
    // The records name users by id: show the two of the demo by name.
    const named = tail.stdout
      .trimEnd()
      .replaceAll(`user=${alice.userId}`, 'user=alice')
      .replaceAll(`user=${admin.userId}`, 'user=admin');
    print(named.replace(/^/gm, '  '));

    say('chain verification (latchkey-agent audit verify)');
    const v = await runAgent(home, ['audit', 'verify', ...common], [], env);
    print(`${v.stdout}${v.stderr}`.trimEnd().replace(/^/gm, '  '));
    const verification = { code: v.code, ok: v.code === 0, output: v.stdout };
    print(
      `\n${verification.ok ? 'demo done' : 'demo done, but the chain did NOT verify'}: tenant ${tenantId}, device ${deviceId}` +
        `${transport === 'https' ? ' (HTTPS JSON)' : ' (gRPC)'}${tcti ? ', keys in the TPM' : ''}`,
    );
    return {
      tenantId,
      deviceId,
      credentialIds: [firstKey, secondKey],
      alice: { userId: alice.userId },
      steps,
      trail,
      verification,
    };
  } finally {
    swtpm?.stop();
    if (tempHome) rmSync(tempHome, { recursive: true, force: true });
  }
}

module.exports = { runDemo, DemoError, PIN, NEW_PIN };
