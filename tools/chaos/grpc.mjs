// gRPC clients and device-side JWS for the chaos load (plain grpc-js + proto-loader, as a third-
// party client would use the contracts in proto/).
import { sign } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { root } = require('../scripts/services.cjs');

const b64url = (b) => Buffer.from(b).toString('base64url');

export function client(area, service, address, { deadlineMs = 15_000 } = {}) {
  const def = protoLoader.loadSync(
    `latchkey/${area}/v1/${service === 'AdminService' ? 'admin' : area}.proto`,
    {
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [path.join(root, 'proto')],
    },
  );
  const Ctor = grpc.loadPackageDefinition(def).latchkey[area].v1[service];
  const raw = new Ctor(address, grpc.credentials.createInsecure(), {
    // Reconnect quickly after an instance comes back (the default back-off reaches 120 s).
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 1000,
  });
  const call = (method, req, token) =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      raw[method](req, md, { deadline: Date.now() + deadlineMs }, (e, r) =>
        e ? reject(e) : resolve(r),
      );
    });
  return { call, close: () => raw.close() };
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

/** The provisioning proof: a JWS over the challenge, signed by the new user key. */
export function proofOfPossession(challenge, privateKey) {
  const input = `${b64url(JSON.stringify({ alg: 'ES256' }))}.${b64url(challenge)}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
}
