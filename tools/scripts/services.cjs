// The one launcher of the four services, used by `npm start`, the e2e tests
// and the start-up benchmark. CommonJS so that ESM scripts and jest can load it.
'use strict';
const { spawn } = require('node:child_process');
const { createWriteStream, mkdirSync } = require('node:fs');
const http = require('node:http');
const { createPrivateKey, createPublicKey, hkdfSync } = require('node:crypto');
const path = require('node:path');
const catalog = require('../services.json');
const { localKeyEncryptionKey } = require('./local-kek.cjs');

const root = path.resolve(__dirname, '../..');

// Public (it is in this file): it encrypted the local databases' secrets before each machine had
// a key of its own (local-kek.cjs), and stays configured so that what it encrypted still decrypts.
const LOCAL_DEV_KEK = 'bGF0Y2hrZXktbG9jYWwtZGV2LWtlay0wMDAwMDAwMDA=';

/**
 * KEY_ENCRYPTION_KEYS of local development and tests: this machine's own random key first (new
 * writes use it), then the old public one (decrypts older local data). A deployment supplies
 * its own from a Kubernetes Secret (the services refuse to start without one).
 */
function localKeyEncryptionKeys() {
  return `${localKeyEncryptionKey()},local-dev:${LOCAL_DEV_KEK}`;
}

/**
 * The service-to-service gRPC calls (caller → callees), as in ARCHITECTURE.md and the chart's
 * `services.<name>.calls`: a caller gets its own signing key, a callee the public keys of its
 * callers (and of no other service).
 */
const INTERNAL_CALLS = { auth: ['registration', 'provisioning'], provisioning: ['registration'] };

// PKCS#8 DER prefix of an Ed25519 private key (RFC 8410), followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The Ed25519 key pair of `service`'s internal calls in local development and tests, as JWKs:
 * derived from the current key-encryption key (HKDF-SHA256 with a label of its own per service:
 * knowing one tells nothing of the KEK or of another service's key), so every clone on this
 * machine agrees on it without another file. A deployment supplies its own (a Secret per caller).
 */
function localInternalCallKeyPair(service, keyEncryptionKeys = currentKeyEncryptionKeys()) {
  const [kid, key] = keyEncryptionKeys.split(',')[0].trim().split(':');
  const seed = Buffer.from(
    hkdfSync(
      'sha256',
      Buffer.from(key, 'base64'),
      Buffer.alloc(0),
      `latchkey internal call ${service}`,
      32,
    ),
  );
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const common = { kid: `${kid}-ic`, alg: 'EdDSA', use: 'sig' };
  return {
    privateJwk: { ...privateKey.export({ format: 'jwk' }), ...common },
    publicJwk: { ...createPublicKey(privateKey).export({ format: 'jwk' }), ...common },
  };
}

/** INTERNAL_CALL_SIGNING_KEYS of `service` (a JWK Set, JSON), whether or not it makes calls. */
function localInternalCallSigningKeys(service, keyEncryptionKeys = currentKeyEncryptionKeys()) {
  return JSON.stringify({
    keys: [localInternalCallKeyPair(service, keyEncryptionKeys).privateJwk],
  });
}

/** Each service's internal-call variables: only its own private key, only its callers' public keys. */
function localInternalCallEnv(service, keyEncryptionKeys) {
  const callers = Object.keys(INTERNAL_CALLS).filter((c) => INTERNAL_CALLS[c].includes(service));
  const trusted = Object.fromEntries(
    callers.map((c) => [c, { keys: [localInternalCallKeyPair(c, keyEncryptionKeys).publicJwk] }]),
  );
  return {
    INTERNAL_CALL_SIGNING_KEYS: INTERNAL_CALLS[service]
      ? localInternalCallSigningKeys(service, keyEncryptionKeys)
      : undefined,
    INTERNAL_CALL_TRUSTED_KEYS: callers.length ? JSON.stringify(trusted) : undefined,
  };
}

function currentKeyEncryptionKeys() {
  return process.env.KEY_ENCRYPTION_KEYS ?? localKeyEncryptionKeys();
}

function profileOf(name) {
  const p = catalog.profiles[name];
  if (!p) throw new Error(`unknown profile ${name}`);
  return p;
}

function ports(service, profile = 'dev') {
  const def = catalog.services.find((s) => s.name === service);
  if (!def) throw new Error(`unknown service ${service}`);
  const { portOffset } = profileOf(profile);
  return { http: def.httpPort + portOffset, grpc: def.grpcPort + portOffset };
}

function serviceEnv(service, profile = 'dev', extra = {}) {
  const def = catalog.services.find((s) => s.name === service);
  const p = profileOf(profile);
  const { http: httpPort, grpc: grpcPort } = ports(service, profile);
  const keyEncryptionKeys = currentKeyEncryptionKeys();
  const env = {
    ...process.env,
    NODE_ENV: profile === 'test' ? 'test' : 'development',
    LOG_LEVEL: p.logLevel,
    HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
    // A profile may name its own infrastructure (the chaos suite's private stack).
    KAFKA_BROKERS: p.kafka ?? catalog.kafka,
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    KAFKA_CLIENT_ID: `${p.groupPrefix}${service}`,
    // A profile may shorten the consumer groups' session timeout (chaos: a killed consumer's
    // partitions move on sooner); otherwise the services' default (KAFKA_SESSION_TIMEOUT_MS).
    ...(p.kafkaSessionTimeoutMs
      ? { KAFKA_SESSION_TIMEOUT_MS: String(p.kafkaSessionTimeoutMs) }
      : {}),
    DATABASE_URL: `${p.postgres ?? catalog.postgres}${p.dbPrefix}${service}`,
    AUDIT_CONSUMER_GROUP: `${p.groupPrefix}audit`,
    PROVISIONING_CONSUMER_GROUP: `${p.groupPrefix}provisioning`,
    // provisioning checks devices with registration's GetDevice.
    REGISTRATION_GRPC_ADDRESS: `127.0.0.1:${ports('registration', profile).grpc}`,
    // auth looks user keys up with provisioning's GetCredential.
    PROVISIONING_GRPC_ADDRESS: `127.0.0.1:${ports('provisioning', profile).grpc}`,
    KEY_ENCRYPTION_KEYS: keyEncryptionKeys,
    // Service-to-service calls (GetDevice, GetCredential): the caller's own signing key, the
    // callee's callers' public keys (whatever the calling environment holds is replaced).
    ...localInternalCallEnv(service, keyEncryptionKeys),
    // Every service validates auth's tokens from auth's JWKS; auth issues them under this name.
    AUTH_ISSUER: `http://127.0.0.1:${ports('auth', profile).http}`,
    ...(def.redis ? { REDIS_URL: p.redis ?? catalog.redis } : {}),
    ...extra,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

function getStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
  });
}

async function waitReady(service, profile = 'dev', { timeoutMs = 120000, child } = {}) {
  const url = `http://127.0.0.1:${ports(service, profile).http}/readyz`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(`${service} exited with code ${child.exitCode}`);
    if ((await getStatus(url)) === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${service} not ready after ${timeoutMs} ms (${url})`);
}

/** Starts one service from dist/. `logFile` captures its output; otherwise it is inherited. */
function startService(service, { profile = 'dev', env = {}, logFile } = {}) {
  const main = path.join(root, 'dist/apps', service, 'src/main.js');
  const child = spawn(process.execPath, ['--enable-source-maps', main], {
    cwd: root,
    env: serviceEnv(service, profile, env),
    stdio: logFile ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
  });
  if (logFile) {
    mkdirSync(path.dirname(logFile), { recursive: true });
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
  }
  return child;
}

function stopChild(child, timeoutMs = 15000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts all four services and waits until each answers /readyz. */
async function startAll({ profile = 'dev', env = {}, logDir, names } = {}) {
  const list = names ?? catalog.services.map((s) => s.name);
  const children = {};
  for (const name of list) {
    children[name] = startService(name, {
      profile,
      env,
      logFile: logDir ? path.join(logDir, `${name}.log`) : undefined,
    });
  }
  const stop = () => Promise.all(Object.values(children).map((c) => stopChild(c)));
  try {
    await Promise.all(list.map((name) => waitReady(name, profile, { child: children[name] })));
  } catch (err) {
    await stop();
    if (logDir) {
      const { readFileSync, existsSync } = require('node:fs');
      for (const name of list) {
        const file = path.join(logDir, `${name}.log`);
        const tail = existsSync(file)
          ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n')
          : '';
        if (tail.trim()) err.message += `\n--- ${name} log (last lines) ---\n${tail}`;
      }
    }
    throw err;
  }
  return { children, stop };
}

module.exports = {
  root,
  catalog,
  ports,
  serviceEnv,
  waitReady,
  startService,
  stopChild,
  startAll,
  INTERNAL_CALLS,
  localInternalCallKeyPair,
  localInternalCallSigningKeys,
};
