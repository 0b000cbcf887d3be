/**
 * Real tenants for the fuzz and tenant-isolation suites, made through the
 * public contracts of the four running services (the e2e profile's global
 * instances): a tenant created by an operator, an admin and a user signed in
 * with password + TOTP (real access tokens from auth, trusted everywhere), a
 * device enrolled with a join token, a spare join token and a user key
 * provisioned on the device.
 */
import type { webcrypto } from 'node:crypto';
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import {
  bearer,
  createJoinToken,
  createTenant,
  deviceMaterial,
  grpcAddress,
  grpcClient,
  provisionKey,
  registerDeviceRequest,
  type UnaryClient,
  waitForDeviceCa,
} from '@latchkey/testing';
import { authClient, signedInAccount, unique } from '../../../apps/auth/e2e/support';

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

export { bearer };

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
  operatorToken ??= signedInAccount(c.auth, PLATFORM_TENANT_ID, 'op', ['operator']).then(
    (a) => a.token,
  );
  return operatorToken;
}

/** Creates a tenant with an admin, a user, a device, a spare join token and a credential. */
export async function newTenant(c: Clients, label: string): Promise<TenantFixture> {
  const op = await operator(c);
  const name = unique(label);
  const tenantId = await createTenant(c.admin, bearer(op), { name, displayName: name });
  const [adminAccount, userAccount] = await Promise.all([
    signedInAccount(c.auth, tenantId, 'admin', ['admin']),
    signedInAccount(c.auth, tenantId, 'user', ['user']),
  ]);
  const [adminToken, userToken] = [adminAccount.token, userAccount.token];
  const admin = bearer(adminToken);
  // registration makes the tenant's device CA when it sees tenant.created.
  await waitForDeviceCa(c.registration, tenantId);
  const join = await createJoinToken(c.registration, tenantId, admin);
  const spare = await createJoinToken(c.registration, tenantId, admin, { description: 'spare' });
  const material = await deviceMaterial();
  const registered = await c.registration.RegisterDevice!(
    registerDeviceRequest(tenantId, join.token, material, {
      displayName: `${label}-laptop`,
      softwareKeyStorage: true,
    }),
  );
  const deviceId = (registered.device as { deviceId: string }).deviceId;
  const { credentialId } = await provisionKey(
    c.provisioning,
    { tenantId, deviceId, keys: material.keys },
    bearer(userToken),
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
    joinTokenId: spare.joinTokenId,
    credentialId,
  };
}
