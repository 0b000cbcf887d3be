#!/usr/bin/env node
// Prints a new Ed25519 key pair for one latchkey service's internal calls (GetDevice,
// GetCredential), as JWKs: the private JWK Set for the service's Secret
// (INTERNAL_CALL_SIGNING_KEYS) and the public JWK for the chart's
// services.<service>.internalCalls.publicKeys (the services it calls trust it).
//
//   node tools/scripts/internal-call-keys.mjs <service> [--kid <kid>] [--json | --dotenv]
//
// --json prints {"signingKeys": <JWK Set>, "publicKey": <JWK>} on one line (for scripts);
// --dotenv prints <SERVICE>_INTERNAL_CALL_SIGNING_KEYS and <SERVICE>_INTERNAL_CALL_PUBLIC_KEY
// lines for deploy/compose/.env.
// Rotation (deploy/helm/latchkey/README.md, "Internal-call keys"): add the new public key to
// publicKeys and roll out (the callees trust both), then put the new private key first in the
// Secret's "keys" (the service signs with it), then remove the old key from both.
import { exportJWK, generateKeyPair } from 'jose';

function usage(message) {
  if (message) process.stderr.write(`internal-call-keys: ${message}\n`);
  process.stderr.write(
    'usage: node tools/scripts/internal-call-keys.mjs <service> [--kid <kid>] [--json | --dotenv]\n',
  );
  process.exit(2);
}

const args = process.argv.slice(2);
let service;
let kid;
let json = false;
let dotenv = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--json') json = true;
  else if (a === '--dotenv') dotenv = true;
  else if (a === '--kid') kid = args[++i] ?? usage('--kid needs a value');
  else if (a === '-h' || a === '--help') usage();
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else if (service) usage('one service only');
  else service = a;
}
if (!service || !/^[a-z][a-z0-9-]{0,62}$/.test(service))
  usage('name the calling service (e.g. auth)');
kid ??= `${service}-${new Date().toISOString().slice(0, 10)}`;
if (!/^[A-Za-z0-9._-]{1,64}$/.test(kid)) usage('a kid is 1-64 letters, digits, ".", "_" or "-"');

const { privateKey, publicKey } = await generateKeyPair('EdDSA', {
  crv: 'Ed25519',
  extractable: true,
});
const common = { kid, alg: 'EdDSA', use: 'sig' };
const privateJwk = { ...(await exportJWK(privateKey)), ...common };
const publicJwk = { ...(await exportJWK(publicKey)), ...common };
const signingKeys = { keys: [privateJwk] };

if (json && dotenv) usage('--json or --dotenv, not both');
if (dotenv) {
  const prefix = service.toUpperCase().replace(/-/g, '_');
  process.stdout.write(
    `${prefix}_INTERNAL_CALL_SIGNING_KEYS='${JSON.stringify(signingKeys)}'\n` +
      `${prefix}_INTERNAL_CALL_PUBLIC_KEY='${JSON.stringify(publicJwk)}'\n`,
  );
} else if (json) {
  process.stdout.write(`${JSON.stringify({ signingKeys, publicKey: publicJwk })}\n`);
} else {
  process.stdout.write(
    [
      `# ${service}: INTERNAL_CALL_SIGNING_KEYS, for its Secret only (private: keep it out of values files,`,
      `# tickets and logs). To rotate, put it first in the "keys" of the current value.`,
      JSON.stringify(signingKeys),
      '',
      `# services.${service}.internalCalls.publicKeys entry (public: the services it calls trust it)`,
      JSON.stringify(publicJwk),
      '',
    ].join('\n'),
  );
}
