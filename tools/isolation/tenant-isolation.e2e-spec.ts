/**
 * The tenant-isolation matrix, generated from the contracts: every RPC whose
 * request names a tenant (a `tenant_id` field, at the top or in a
 * sub-message) is called with an admin token of tenant A on tenant B's
 * resources (B's user, device, credential, join token, policies) and must
 * answer PERMISSION_DENIED or NOT_FOUND and change nothing stored; the same
 * request with B's own admin token then succeeds (so the refusal is the tenant
 * check, not a malformed request). An RPC that names no tenant, or that is not
 * authorized by an admin token, is listed in EXEMPT with the reason; a new RPC
 * that is neither tenant-scoped nor listed fails the classification test.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { deviceAssertion, deviceMaterial, reasonOf } from '@latchkey/testing';
import { contracts, type MessageInfo, type RpcInfo } from '../fuzz/support/contracts';
import { callRaw, closeRawClients } from '../fuzz/support/probes';
import { StateProbe } from '../fuzz/support/state';
import {
  bearer,
  clients,
  type Clients,
  newTenant,
  type TenantFixture,
} from '../fuzz/support/tenants';

/** RPCs outside the admin-token matrix, and why. */
const EXEMPT: Record<string, string> = {
  'latchkey.auth.v1.AdminService/CreateTenant':
    'operator only; makes a new tenant, so there is no other tenant to reach (an admin is refused: checked below)',
  'latchkey.auth.v1.AdminService/RotateSigningKey':
    'operator only; the signing key is the platform’s (an admin is refused: checked below)',
  'latchkey.auth.v1.AuthService/GetNonce':
    'unauthenticated by design: a nonce bound to (tenant, device, purpose), revealing nothing; only B’s device key can use it',
  'latchkey.auth.v1.AuthService/ConsumeNonce':
    'service-to-service (no caller token); succeeds only for the exact binding the nonce was issued with',
  'latchkey.auth.v1.AuthService/SignInWithPassword':
    'primary sign-in: no token, the tenant and user come from the credentials',
  'latchkey.auth.v1.AuthService/EnrollTotp': 'primary sign-in: authorized by the MFA ticket only',
  'latchkey.auth.v1.AuthService/CompleteMfa': 'primary sign-in: authorized by the MFA ticket only',
  'latchkey.auth.v1.AuthService/SignInWithKey':
    'device-authenticated: a request signed by the device key (and the user key), no admin token',
  'latchkey.auth.v1.AuthService/RefreshWithPrt':
    'PRT-authenticated: the refresh token and a proof keyed by the session key, no admin token',
  'latchkey.registration.v1.RegistrationService/GetDevice':
    'internal service-to-service lookup: only auth and provisioning, with the deployment’s internal-call token (tools/security/internal-calls)',
  'latchkey.registration.v1.RegistrationService/GetSelfDevice':
    'names no tenant: the device reads its own record, authorized by an assertion signed by its key (no token); another tenant’s device is refused: apps/registration/e2e/device-self',
  'latchkey.registration.v1.RegistrationService/RenewDeviceCertificate':
    'authorized by an assertion signed by the device’s current key, not by a token',
  'latchkey.registration.v1.RegistrationService/GetTenantCaCertificate':
    'public: the tenant CA certificate',
  'latchkey.registration.v1.RegistrationService/GetCertificateRevocationList': 'public: the CRL',
  'latchkey.provisioning.v1.ProvisioningService/GetCredential':
    'internal lookup for auth’s key sign-in: only auth, with the deployment’s internal-call token (tools/security/internal-calls)',
  'latchkey.provisioning.v1.ProvisioningService/BeginProvisioning':
    'a user token plus a device assertion; another tenant’s device is refused: checked below',
  'latchkey.provisioning.v1.ProvisioningService/CompleteProvisioning':
    'bound to the single-use challenge of BeginProvisioning (user and device)',
  'latchkey.provisioning.v1.ProvisioningService/DeleteCredential':
    'authorized by an assertion of the device holding the key, not by a token',
};

/**
 * RPCs being implemented now (key sign-in, by the lead): while they answer
 * UNIMPLEMENTED the matrix accepts it; once they land the same rules apply.
 */
const PENDING = new Set(['latchkey.auth.v1.AuthService/RevokeSessions']);

/** Requests the contracts alone cannot fill with valid values (beyond tenant ids and B's resources). */
const OVERRIDES: Record<string, (b: TenantFixture) => Promise<object> | object> = {
  // Exactly one of user_id and device_id.
  'latchkey.auth.v1.AuthService/RevokeSessions': () => ({ deviceId: '' }),
  'latchkey.registration.v1.RegistrationService/RegisterDevice': async () => {
    const m = await deviceMaterial();
    return {
      joinToken: '',
      csrPem: m.csrPem,
      transportPublicKey: m.transportPublicKey,
      displayName: 'isolation-laptop',
      osType: 'linux',
      osVersion: '6.1',
      joinType: 'JOIN_TYPE_JOINED',
    };
  },
};

/** RPCs whose control call (B's admin token) cannot succeed, and why. */
const NO_CONTROL: Record<string, string> = {
  'latchkey.registration.v1.RegistrationService/RegisterDevice':
    'enrollment takes a join token or a user token with scope devices:register, not an admin token',
};

/** Controls that change or remove B's fixtures run last, in this order. */
const LAST = [/Disable/, /Revoke/, /Delete/];

const { rpcs, messages } = contracts();

function tenantScoped(m: MessageInfo): boolean {
  return m.fields.some(
    (f) =>
      f.name === 'tenant_id' ||
      (f.type === 'TYPE_MESSAGE' &&
        !f.repeated &&
        (messages.get(f.typeName)?.fields.some((g) => g.name === 'tenant_id') ?? false)),
  );
}

const matrix = rpcs.filter((r) => tenantScoped(r.request) && !EXEMPT[r.id]);

let c: Clients;
let a: TenantFixture;
let b: TenantFixture;
let probe: StateProbe;
/** B's current state of the messages that carry a tenant_id (policies), by message type. */
const snapshots = new Map<string, Record<string, unknown>>();

beforeAll(async () => {
  c = clients();
  [a, b] = await Promise.all([newTenant(c, 'iso-a'), newTenant(c, 'iso-b')]);
  probe = await StateProbe.open();
  const admin = bearer(b.adminToken);
  const key = await c.provisioning.GetKeyPolicy!({ tenantId: b.tenantId }, admin);
  const device = await c.registration.GetDevicePolicy!({ tenantId: b.tenantId }, admin);
  for (const policy of [key.policy, device.policy] as Record<string, unknown>[]) {
    const { updateTime: _ignored, ...rest } = policy;
    snapshots.set(
      policy === key.policy
        ? 'latchkey.provisioning.v1.KeyPolicy'
        : 'latchkey.registration.v1.DevicePolicy',
      rest,
    );
  }
}, 240_000);

afterAll(async () => {
  c?.close();
  closeRawClients();
  await probe?.close();
});

/** A request of `rpc` on tenant B's resources, filled from the field names of its message. */
async function requestOnB(rpc: RpcInfo): Promise<Record<string, unknown>> {
  const ids: Record<string, string> = {
    tenant_id: b.tenantId,
    device_id: b.deviceId,
    user_id: b.userId,
    credential_id: b.credentialId,
    join_token_id: b.joinTokenId,
    reason: 'tenant isolation matrix',
    password: 'correct horse battery staple 42',
  };
  const newUser = () => ({
    username: `iso-${randomUUID().slice(0, 8)}`,
    displayName: 'Isolation',
    roles: ['user'],
  });
  const req: Record<string, unknown> = {};
  for (const f of rpc.request.fields) {
    if (f.type === 'TYPE_STRING' && !f.repeated && ids[f.name] !== undefined)
      req[f.key] = ids[f.name];
    else if (f.typeName === 'latchkey.auth.v1.NewUser')
      req[f.key] = f.repeated ? [newUser(), newUser()] : newUser();
    else if (f.type === 'TYPE_MESSAGE' && snapshots.has(f.typeName))
      req[f.key] = { ...snapshots.get(f.typeName), tenantId: b.tenantId };
    else if (
      f.type === 'TYPE_MESSAGE' &&
      messages.get(f.typeName)?.fields.some((g) => g.name === 'tenant_id')
    )
      req[f.key] = { tenantId: b.tenantId };
  }
  const override = OVERRIDES[rpc.id];
  return { ...req, ...(override ? await override(b) : {}) };
}

function clientOf(rpc: RpcInfo) {
  if (rpc.service.endsWith('.AdminService')) return c.admin;
  if (rpc.service.endsWith('.AuthService')) return c.auth;
  return c[rpc.app as 'registration' | 'provisioning' | 'audit'];
}

/** Calls the RPC (unary or server-streaming) with `token`: its status code, reason and details. */
async function call(
  rpc: RpcInfo,
  req: object,
  token: string,
): Promise<{ code: number; reason?: string; details?: string }> {
  if (rpc.responseStream) {
    const res = await callRaw(rpc, rpc.definition.requestSerialize(req), bearer(token));
    return { code: res.code, details: res.code === status.OK ? undefined : res.details };
  }
  return clientOf(rpc)[rpc.method]!(req, bearer(token)).then(
    () => ({ code: status.OK }),
    (err: { code: number; details?: string }) => ({
      code: err.code,
      reason: reasonOf(err),
      details: err.details,
    }),
  );
}

describe('classification', () => {
  it('classifies every RPC of the contracts: tenant-scoped (in the matrix) or exempt with a reason', () => {
    const unclassified = rpcs
      .filter((r) => !tenantScoped(r.request) && !EXEMPT[r.id])
      .map((r) => r.id);
    expect(unclassified).toEqual([]);
    const stale = Object.keys(EXEMPT).filter((id) => !rpcs.some((r) => r.id === id));
    expect(stale).toEqual([]);
    expect(matrix.length).toBeGreaterThanOrEqual(25);
  });
});

const order = (r: RpcInfo) => LAST.findIndex((re) => re.test(r.method));
const controls = [...matrix].sort((x, y) => order(x) - order(y));

describe.each(matrix.map((r) => [r.id, r] as const))('tenant A’s admin on %s', (_id, rpc) => {
  it('is refused with PERMISSION_DENIED or NOT_FOUND and changes nothing', async () => {
    const before = await probe.fingerprint([a.tenantId, b.tenantId]);
    const res = await call(rpc, await requestOnB(rpc), a.adminToken);
    if (PENDING.has(rpc.id) && res.code === status.UNIMPLEMENTED) return;
    expect({
      rpc: rpc.id,
      code: status[res.code],
      reason: res.reason,
      details: res.details,
    }).toMatchObject({
      code: expect.stringMatching(/^(PERMISSION_DENIED|NOT_FOUND)$/),
    });
    expect(await probe.fingerprint([a.tenantId, b.tenantId])).toEqual(before);
  });
});

describe('operator-only and device-bound RPCs', () => {
  it('refuse tenant A’s admin: CreateTenant and RotateSigningKey', async () => {
    for (const [id, req] of [
      [
        'latchkey.auth.v1.AdminService/CreateTenant',
        { name: `iso-${Date.now()}`, displayName: 'x' },
      ],
      ['latchkey.auth.v1.AdminService/RotateSigningKey', {}],
    ] as const) {
      const rpc = rpcs.find((r) => r.id === id)!;
      const before = await probe.fingerprint([a.tenantId, b.tenantId]);
      expect({ id, code: status[(await call(rpc, req, a.adminToken)).code] }).toEqual({
        id,
        code: 'PERMISSION_DENIED',
      });
      expect(await probe.fingerprint([a.tenantId, b.tenantId])).toEqual(before);
    }
  });

  it('BeginProvisioning: tenant A’s user with tenant B’s device (and its valid assertion) is refused', async () => {
    const before = await probe.fingerprint([a.tenantId, b.tenantId]);
    const err = await c.provisioning.BeginProvisioning!(
      {
        deviceId: b.deviceId,
        deviceAssertion: await deviceAssertion({ ...b, keys: b.deviceKeys }),
      },
      bearer(a.userToken),
    ).then(
      () => undefined,
      (e: { code: number }) => e,
    );
    expect(err && status[err.code]).toMatch(/^(PERMISSION_DENIED|NOT_FOUND|UNAUTHENTICATED)$/);
    expect(await probe.fingerprint([a.tenantId, b.tenantId])).toEqual(before);
  });
});

describe.each(controls.map((r) => [r.id, r] as const))(
  'control: tenant B’s admin on %s',
  (_id, rpc) => {
    it('succeeds with the same request (the refusal above was the tenant check)', async () => {
      if (NO_CONTROL[rpc.id]) return;
      const res = await call(rpc, await requestOnB(rpc), b.adminToken);
      if (PENDING.has(rpc.id) && res.code === status.UNIMPLEMENTED) return;
      expect({
        rpc: rpc.id,
        code: status[res.code],
        reason: res.reason,
        details: res.details,
      }).toEqual({
        rpc: rpc.id,
        code: 'OK',
        reason: undefined,
        details: undefined,
      });
    });
  },
);
