/**
 * Enrolment as the end-to-end tests do it, in small steps that take the clients
 * they call: a device key with its PKCS#10 CSR (@peculiar/x509) and a transport
 * key, a join token, RegisterDevice, a tenant's device CA, a device assertion,
 * a user key with its proof of possession, and provisioning (BeginProvisioning
 * with a device assertion, CompleteProvisioning with the proof). Tokens come in
 * as gRPC metadata, so the steps work with a real auth sign-in and with a test
 * token issuer alike.
 */
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
  webcrypto,
} from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { SignJWT } from 'jose';
import { eventually } from './eventually';
import type { UnaryClient } from './grpc-client';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The device key's algorithm: ECDSA on P-256 with SHA-256 (WebCrypto parameters). */
export const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** A WebCrypto key pair as @peculiar/x509 wants it for a CSR. */
export type CsrKeys = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'];

export type DeviceCurve = 'P-256' | 'P-384';

/** ECDSA parameters of a device key on `curve` (SHA-256 on P-256, SHA-384 on P-384). */
export function ecdsa(curve: DeviceCurve = 'P-256') {
  return { name: 'ECDSA', namedCurve: curve, hash: curve === 'P-256' ? 'SHA-256' : 'SHA-384' };
}

/** A device key pair held by WebCrypto. */
export async function newDeviceKeys(
  curve: DeviceCurve = 'P-256',
  extractable = true,
): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ecdsa(curve), extractable, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

/** The PKCS#10 CSR (PEM) of `keys`, signed by them, for the subject `CN=<name>`. */
export async function deviceCsr(
  keys: webcrypto.CryptoKeyPair,
  name = 'device',
  curve: DeviceCurve = 'P-256',
): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}`,
    keys: keys as unknown as CsrKeys,
    signingAlgorithm: ecdsa(curve),
  });
  return csr.toString('pem');
}

/** A transport key pair: EC P-256 or RSA 2048; the public key as SPKI PEM. */
export function transportKey(kind: 'ec' | 'rsa' = 'ec'): {
  publicKeyPem: string;
  privateKey: KeyObject;
} {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: pair.privateKey,
  };
}

/** What RegisterDevice wants from a device: its key's CSR and a transport key (and the keys kept here). */
export interface DeviceMaterial {
  keys: webcrypto.CryptoKeyPair;
  csrPem: string;
  transportPublicKey: string;
  transportPrivateKey: KeyObject;
}

export interface DeviceMaterialOptions {
  curve?: DeviceCurve;
  /** The CSR's common name. */
  name?: string;
  transport?: 'ec' | 'rsa';
  /** Whether the device's private key may be exported (default true). */
  extractable?: boolean;
}

/** A fresh device key with its CSR and a transport key. */
export async function deviceMaterial(o: DeviceMaterialOptions = {}): Promise<DeviceMaterial> {
  const keys = await newDeviceKeys(o.curve, o.extractable);
  const transport = transportKey(o.transport);
  return {
    keys,
    csrPem: await deviceCsr(keys, o.name, o.curve),
    transportPublicKey: transport.publicKeyPem,
    transportPrivateKey: transport.privateKey,
  };
}

/** Real device material: an EC P-256 device key (not extractable), its CSR for `CN=<name>`, an RSA transport key. */
export function newDeviceMaterial(name = 'test-device'): Promise<DeviceMaterial> {
  return deviceMaterial({ name, transport: 'rsa', extractable: false });
}

/** CreateTenant as an operator (auth's AdminService); returns the new tenant's id. */
export async function createTenant(
  admin: UnaryClient,
  operator: Metadata,
  request: { name: string; displayName: string; lockoutPolicy?: object },
): Promise<string> {
  const created = await admin.CreateTenant!(request, operator);
  return (created.tenant as { tenantId: string }).tenantId;
}

/** Waits until registration has made the device CA of `tenantId` (it does when it sees tenant.created). */
export async function waitForDeviceCa(
  registration: UnaryClient,
  tenantId: string,
  what = `the device CA of ${tenantId}`,
): Promise<void> {
  await eventually(
    async () =>
      (await registration.getTenantCaCertificate!({ tenantId }).catch(() => undefined)) ??
      undefined,
    { what, timeoutMs: 60_000 },
  );
}

export interface JoinTokenOptions {
  maxUses?: number;
  ttlSeconds?: number;
  deviceNamePrefix?: string;
  description?: string;
}

/** CreateJoinToken for `tenantId` as `admin` (default: one use, an hour). */
export async function createJoinToken(
  registration: UnaryClient,
  tenantId: string,
  admin: Metadata,
  o: JoinTokenOptions = {},
): Promise<{ token: string; joinTokenId: string }> {
  const res = await registration.createJoinToken!(
    {
      tenantId,
      maxUses: o.maxUses ?? 1,
      ttlSeconds: o.ttlSeconds ?? 3600,
      ...(o.deviceNamePrefix === undefined ? {} : { deviceNamePrefix: o.deviceNamePrefix }),
      ...(o.description === undefined ? {} : { description: o.description }),
    },
    admin,
  );
  return {
    token: res.token as string,
    joinTokenId: (res.joinToken as { joinTokenId: string }).joinTokenId,
  };
}

/** A RegisterDevice request with a join token (a Linux laptop unless `extra` says otherwise). */
export function registerDeviceRequest(
  tenantId: string,
  joinToken: string,
  device: { csrPem: string; transportPublicKey: string },
  extra: Record<string, unknown> = {},
) {
  return {
    tenantId,
    joinToken,
    csrPem: device.csrPem,
    transportPublicKey: device.transportPublicKey,
    displayName: 'LAPTOP-42',
    osType: 'linux',
    osVersion: '6.1',
    joinType: 'JOIN_TYPE_JOINED',
    ...extra,
  };
}

/** A device that can sign assertions: its tenant, id and key pair. */
export interface AssertingDevice {
  tenantId: string;
  deviceId: string;
  keys: webcrypto.CryptoKeyPair;
}

export interface EnrolledDevice extends AssertingDevice {
  transportPrivateKey: KeyObject;
  certificatePem: string;
  chainPem: string[];
}

/**
 * Enrols a device with a new join token made by `admin`: RegisterDevice with `material`
 * (fresh P-256 material by default) and the request fields in `extra`.
 */
export async function enrolDevice(
  registration: UnaryClient,
  tenantId: string,
  admin: Metadata,
  o: {
    material?: DeviceMaterial;
    joinToken?: JoinTokenOptions;
    extra?: Record<string, unknown>;
  } = {},
): Promise<EnrolledDevice> {
  const join = await createJoinToken(registration, tenantId, admin, o.joinToken);
  const m = o.material ?? (await deviceMaterial());
  const res = await registration.registerDevice!(
    registerDeviceRequest(tenantId, join.token, m, o.extra),
  );
  return {
    tenantId,
    deviceId: (res.device as { deviceId: string }).deviceId,
    keys: m.keys,
    transportPrivateKey: m.transportPrivateKey,
    certificatePem: res.certificatePem as string,
    chainPem: res.certificateChainPem as string[],
  };
}

export interface AssertionOptions {
  /** The audience (default provisioning's). */
  aud?: string;
  jti?: string;
  /** Further claims (after `tid` and `jti`). */
  claims?: Record<string, unknown>;
  /** The signing key (default the device's own). */
  key?: webcrypto.CryptoKey;
}

/** A device assertion: a JWS by the device key with kid and sub the device id. */
export function deviceAssertion(
  device: AssertingDevice,
  o: AssertionOptions = {},
): Promise<string> {
  return new SignJWT({ tid: device.tenantId, jti: o.jti ?? randomUUID(), ...o.claims })
    .setProtectedHeader({ alg: 'ES256', kid: device.deviceId })
    .setSubject(device.deviceId)
    .setAudience(o.aud ?? 'latchkey-provisioning')
    .setIssuedAt()
    .sign(o.key ?? device.keys.privateKey);
}

/** User key material as a device would make it: a key pair, its public JWK and its credential id. */
export interface UserKey {
  algorithm: 'ES256' | 'RS256';
  privateKey: KeyObject;
  publicKeyJwk: string;
  /** base64url SHA-256 of the SPKI: what provisioning must return as the credential id. */
  expectedCredentialId: string;
}

export function newUserKey(algorithm: 'ES256' | 'RS256' = 'ES256', rsaBits = 2048): UserKey {
  const pair =
    algorithm === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: rsaBits });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  return {
    algorithm,
    privateKey: pair.privateKey,
    publicKeyJwk: JSON.stringify(pair.publicKey.export({ format: 'jwk' })),
    expectedCredentialId: createHash('sha256').update(spki).digest('base64url'),
  };
}

/**
 * A compact JWS over `challenge` made with node:crypto directly (not jose, which
 * refuses to sign with the weak keys some tests need).
 */
export async function proofOver(challenge: string, key: UserKey): Promise<string> {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const input = `${b64(JSON.stringify({ alg: key.algorithm }))}.${b64(challenge)}`;
  const signature = sign('sha256', Buffer.from(input), {
    key: key.privateKey,
    ...(key.algorithm === 'ES256' ? { dsaEncoding: 'ieee-p1363' as const } : {}),
  });
  return `${input}.${signature.toString('base64url')}`;
}

/** CompleteProvisioning for `challenge`: `key`'s public JWK and its proof of possession over it. */
export async function completeRequest(deviceId: string, challenge: string, key: UserKey) {
  return {
    deviceId,
    challenge,
    publicKeyJwk: key.publicKeyJwk,
    algorithm: key.algorithm,
    proofOfPossession: await proofOver(challenge, key),
  };
}

/**
 * Provisioning as a device does it, for the user of `user` (a token as metadata):
 * BeginProvisioning with a device assertion, then CompleteProvisioning with `key`'s
 * public JWK and its proof over the challenge. Returns the new credential.
 */
export async function provisionKey(
  provisioning: UnaryClient,
  device: AssertingDevice,
  user: Metadata,
  key: UserKey = newUserKey(),
): Promise<{ credentialId: string; status: string }> {
  const begun = await provisioning.beginProvisioning!(
    { deviceId: device.deviceId, deviceAssertion: await deviceAssertion(device) },
    user,
  );
  const done = await provisioning.completeProvisioning!(
    await completeRequest(device.deviceId, begun.challenge as string, key),
    user,
  );
  return done.credential as { credentialId: string; status: string };
}
