/**
 * Real tenants for the fuzz and tenant-isolation suites, made through the
 * public contracts of the four running services (the e2e profile's global
 * instances): a tenant created by an operator, an admin and a user signed in
 * with password + TOTP (real access tokens from auth, trusted everywhere), a
 * device enrolled with a join token, a spare join token and a user key
 * provisioned on the device.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { SignJWT } from 'jose';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { eventually, grpcAddress, grpcClient, type UnaryClient } from '@latchkey/testing';
import { authClient, seedAccount, signIn, unique } from '../../../apps/auth/e2e/support';
import { completeRequest } from '../../../apps/provisioning/e2e/support/complete-request';
import { newUserKey, type UserKey } from '../../../apps/provisioning/e2e/support/user-keys';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** The device key's algorithm: ECDSA on P-256 with SHA-256 (WebCrypto parameters). */
export const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** A WebCrypto key pair as @peculiar/x509 wants it for a CSR. */
export type CsrKeys = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'];

export interface Clients {
  auth: UnaryClient;
  admin: UnaryClient;
  registration: UnaryClient;
  provisioning: UnaryClient;
  audit: UnaryClient;
  close(): void;
}

export function clients(): Clients {
  const c = {
    auth: authClient('AuthService'),
    admin: authClient('AdminService'),
    registration: grpcClient('registration', grpcAddress('registration')),
    provisioning: grpcClient('provisioning', grpcAddress('provisioning')),
    audit: grpcClient('audit', grpcAddress('audit')),
  };
  return { ...c, close: () => Object.values(c).forEach((x) => x.close()) };
}

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

export interface TenantFixture {
  tenantId: string;
  name: string;
  /** Access token of a tenant admin (roles ["admin"]). */
  adminToken: string;
  adminUserId: string;
  /** A plain user of the tenant, with their access token (fresh MFA). */
  userId: string;
  userToken: string;
  deviceId: string;
  deviceKeys: webcrypto.CryptoKeyPair;
  /** A join token nobody used. */
  joinTokenId: string;
  /** The user's key on the device. */
  credentialId: string;
}

let operatorToken: Promise<string> | undefined;

/** An operator of the platform tenant (seeded in auth's database, signed in). */
export function operator(c: Clients): Promise<string> {
  operatorToken ??= seedAccount(PLATFORM_TENANT_ID, unique('op'), ['operator']).then((a) =>
    signIn(c.auth, a),
  );
  return operatorToken;
}

/** A device assertion (audience `aud`) signed by the device key. */
export function deviceAssertion(
  t: Pick<TenantFixture, 'tenantId' | 'deviceId' | 'deviceKeys'>,
  aud = 'latchkey-provisioning',
  claims: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ tid: t.tenantId, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: t.deviceId })
    .setSubject(t.deviceId)
    .setAudience(aud)
    .setIssuedAt()
    .sign(t.deviceKeys.privateKey);
}

/** A fresh device key with its CSR and a transport key, as RegisterDevice wants them. */
export async function deviceMaterial(): Promise<{
  keys: webcrypto.CryptoKeyPair;
  csrPem: string;
  transportPublicKey: string;
}> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=device',
    keys: keys as unknown as CsrKeys,
    signingAlgorithm: EC,
  });
  const transport = (await webcrypto.subtle.generateKey(
    { name: 'ECDH', namedCurve: 'P-256' },
    true,
    ['deriveBits'],
  )) as webcrypto.CryptoKeyPair;
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', transport.publicKey));
  const b64 = spki.toString('base64').replace(/(.{64})/g, '$1\n');
  return {
    keys,
    csrPem: csr.toString('pem'),
    transportPublicKey: `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`,
  };
}

/**
 * Provisioning as a device does it, for the user of `userToken`: BeginProvisioning with a device
 * assertion, then CompleteProvisioning with `key`'s public JWK and its proof over the challenge.
 * Returns the new credential's id.
 */
export async function provisionKey(
  c: Clients,
  device: Pick<TenantFixture, 'tenantId' | 'deviceId' | 'deviceKeys'>,
  userToken: string,
  key: UserKey = newUserKey(),
): Promise<string> {
  const md = bearer(userToken);
  const begun = await c.provisioning.BeginProvisioning!(
    { deviceId: device.deviceId, deviceAssertion: await deviceAssertion(device) },
    md,
  );
  const challenge = begun.challenge as string;
  const done = await c.provisioning.CompleteProvisioning!(
    await completeRequest(device.deviceId, challenge, key),
    md,
  );
  return (done.credential as { credentialId: string }).credentialId;
}

/** Creates a tenant with an admin, a user, a device, a spare join token and a credential. */
export async function newTenant(c: Clients, label: string): Promise<TenantFixture> {
  const op = await operator(c);
  const name = unique(label);
  const created = await c.admin.CreateTenant({ name, displayName: name }, bearer(op));
  const tenantId = (created.tenant as { tenantId: string }).tenantId;
  const [adminAccount, userAccount] = await Promise.all([
    seedAccount(tenantId, unique('admin'), ['admin']),
    seedAccount(tenantId, unique('user'), ['user']),
  ]);
  const [adminToken, userToken] = await Promise.all([
    signIn(c.auth, adminAccount),
    signIn(c.auth, userAccount),
  ]);
  const admin = bearer(adminToken);
  // registration makes the tenant's device CA when it sees tenant.created.
  await eventually(
    async () =>
      (await c.registration.GetTenantCaCertificate!({ tenantId }).catch(() => undefined)) ??
      undefined,
    { what: `the device CA of ${tenantId}`, timeoutMs: 60_000 },
  );
  const join = await c.registration.CreateJoinToken!(
    { tenantId, maxUses: 1, ttlSeconds: 3600 },
    admin,
  );
  const spare = await c.registration.CreateJoinToken!(
    { tenantId, maxUses: 1, ttlSeconds: 3600, description: 'spare' },
    admin,
  );
  const material = await deviceMaterial();
  const registered = await c.registration.RegisterDevice!({
    tenantId,
    joinToken: join.token,
    csrPem: material.csrPem,
    transportPublicKey: material.transportPublicKey,
    displayName: `${label}-laptop`,
    osType: 'linux',
    osVersion: '6.1',
    joinType: 'JOIN_TYPE_JOINED',
    softwareKeyStorage: true,
  });
  const deviceId = (registered.device as { deviceId: string }).deviceId;
  const credentialId = await provisionKey(
    c,
    { tenantId, deviceId, deviceKeys: material.keys },
    userToken,
  );
  return {
    tenantId,
    name,
    adminToken,
    adminUserId: adminAccount.userId,
    userId: userAccount.userId,
    userToken,
    deviceId,
    deviceKeys: material.keys,
    joinTokenId: (spare.joinToken as { joinTokenId: string }).joinTokenId,
    credentialId,
  };
}
