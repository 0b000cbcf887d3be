/** register, status and unregister: the device's identity with registration. */
import { hostname, release } from 'node:os';
import type { AgentContext, DeviceState, SessionState } from '../cli/agent-context';
import { newDeviceKeys } from '../device/device-keys';
import { KeystoreError } from '../keystore/software-keystore';
import { deviceAssertion, REGISTRATION_AUDIENCE } from '../protocol/device-protocol';
import { endpointsFrom, UsageError } from '../server/endpoints';
import { ServiceCallError } from '../server/service-clients';

export async function register(ctx: AgentContext): Promise<void> {
  const tenantId = ctx.flags.tenant as string | undefined;
  if (!tenantId) throw new UsageError('register needs --tenant <tenant id>');
  if (ctx.keystore.has('device'))
    throw new KeystoreError(
      'KEY_EXISTS',
      `this keystore (${ctx.keystore.dir}) holds a registered device already: run \`latchkey-agent unregister\` first`,
    );
  const joinToken =
    (ctx.flags['join-token'] as string | undefined) ?? (await ctx.terminal.secret('Join token: '));
  const joinType = String(ctx.flags['join-type'] ?? 'joined').toUpperCase();
  if (joinType !== 'JOINED' && joinType !== 'REGISTERED')
    throw new UsageError('--join-type is joined or registered');
  const displayName = (ctx.flags.name as string | undefined) ?? hostname();
  const endpoints = endpointsFrom(ctx.flags);
  const keys = await newDeviceKeys(ctx.flags, displayName);
  const res = await ctx
    .clients(endpoints)
    .of('registration')
    .call('RegisterDevice', {
      tenantId,
      joinToken: joinToken.trim(),
      ...keys.request,
      displayName,
      osType: 'linux',
      osVersion: release(),
      joinType: `JOIN_TYPE_${joinType}`,
    });
  const device = res.device as { deviceId: string; attestationLevel: string };
  ctx.keystore.ensureFolder();
  keys.save(ctx.keystore);
  const state: DeviceState = {
    version: 1,
    tenantId,
    deviceId: device.deviceId,
    displayName,
    storage: keys.storage,
    endpoints,
    certificatePem: res.certificatePem as string,
    certificateChainPem: (res.certificateChainPem as string[]) ?? [],
    registeredAt: new Date().toISOString(),
  };
  ctx.keystore.saveDevice(state);
  ctx.result(
    {
      tenantId,
      deviceId: device.deviceId,
      displayName,
      attestationLevel: device.attestationLevel,
      keystore: ctx.keystore.dir,
    },
    `registered device ${device.deviceId} (${displayName}) in tenant ${tenantId}\n` +
      `  keys in ${keys.storage === 'tpm' ? 'the TPM, their wrapped blobs in' : 'the software keystore'} ${ctx.keystore.dir}; attestation ${device.attestationLevel}`,
  );
}

type Reachability = { reachable: boolean; detail?: string };

export async function status(ctx: AgentContext): Promise<void> {
  const device = ctx.device();
  const clients = ctx.clients();
  const server: Record<string, Reachability> = {};
  let deviceStatus = 'unknown';
  // The device's own record, read with a device assertion (GetSelfDevice; over HTTPS
  // GET /v1/devices/self): registration answers for an active or a disabled device,
  // and refuses a deleted one with DEVICE_DELETED.
  let assertion: string | undefined;
  try {
    assertion = await deviceAssertion(device, ctx.keystore.deviceKey(), REGISTRATION_AUDIENCE);
  } catch (err) {
    server.registration = {
      reachable: false,
      detail: `not asked: the device key could not sign (${(err as Error).message})`,
    };
  }
  if (assertion) {
    try {
      const res = await clients.of('registration').call('GetSelfDevice', {
        deviceAssertion: assertion,
      });
      deviceStatus = String((res.device as { status: string }).status)
        .replace('DEVICE_STATUS_', '')
        .toLowerCase();
      server.registration = { reachable: true };
    } catch (err) {
      if (err instanceof ServiceCallError && err.reason === 'DEVICE_DELETED')
        deviceStatus = 'deleted';
      server.registration = reachability(err);
    }
  }
  try {
    const res = await fetch(`${device.endpoints.authUrl}/.well-known/openid-configuration`, {
      signal: AbortSignal.timeout(5000),
    });
    server.auth = { reachable: res.ok, ...(res.ok ? {} : { detail: `HTTP ${res.status}` }) };
  } catch (err) {
    server.auth = { reachable: false, detail: (err as Error).message };
  }
  const key = ctx.keystore.userKey();
  const pin = ctx.keystore.pinState();
  const lockedFor = Math.max(0, Math.ceil((pin.lockedUntil - Date.now()) / 1000));
  let credentialStatus: string | undefined;
  const session = ctx.keystore.session<SessionState>();
  const accessValid = session && Date.parse(session.accessTokenExpireTime) > Date.now() + 5000;
  if (key && session && accessValid) {
    try {
      const res = await clients
        .of('provisioning')
        .call(
          'ListCredentials',
          { tenantId: device.tenantId, deviceId: device.deviceId },
          session.accessToken,
        );
      const found = ((res.credentials as { credentialId: string; status: string }[]) ?? []).find(
        (c) => c.credentialId === key.credentialId,
      );
      credentialStatus = found
        ? found.status.replace('CREDENTIAL_STATUS_', '').toLowerCase()
        : 'not found';
      server.provisioning = { reachable: true };
    } catch (err) {
      server.provisioning = reachability(err);
    }
  }
  const report = {
    keystore: ctx.keystore.dir,
    device: {
      tenantId: device.tenantId,
      deviceId: device.deviceId,
      displayName: device.displayName,
      storage: device.storage,
      status: deviceStatus,
    },
    key: key
      ? {
          credentialId: key.credentialId,
          userId: key.userId,
          username: key.username,
          algorithm: key.algorithm,
          storage: key.storage,
          ...(credentialStatus ? { status: credentialStatus } : {}),
        }
      : null,
    pin: {
      failures: pin.failures,
      lockedForSeconds: lockedFor,
      destroyed: pin.destroyed,
    },
    session: session
      ? {
          sessionId: session.sessionId,
          userId: session.userId,
          accessTokenExpireTime: session.accessTokenExpireTime,
          refreshTokenExpireTime: session.refreshTokenExpireTime,
          accessTokenValid: Boolean(accessValid),
        }
      : null,
    server,
  };
  const lines = [
    `device   ${device.deviceId} (${device.displayName}) tenant ${device.tenantId}: ${deviceStatus}, ${device.storage} keystore`,
    key
      ? `key      ${key.credentialId} of ${key.username} (${key.algorithm}, ${key.storage})${credentialStatus ? `: ${credentialStatus}` : ''}`
      : pin.destroyed
        ? 'key      destroyed after too many wrong PINs: run `latchkey-agent reset-pin`'
        : 'key      none: run `latchkey-agent provision`',
    key?.storage === 'tpm'
      ? 'pin      checked by the TPM (its dictionary-attack protection counts wrong PINs)'
      : `pin      ${pin.failures} wrong attempts${lockedFor ? `, locked for ${lockedFor} s` : ''}`,
    session
      ? `session  ${session.sessionId}: access token ${accessValid ? 'valid' : 'expired'} until ${session.accessTokenExpireTime}, PRT until ${session.refreshTokenExpireTime}`
      : 'session  none: run `latchkey-agent login`',
    ...Object.entries(server).map(
      ([name, r]) =>
        `server   ${name}: ${r.reachable ? 'reachable' : `unreachable${r.detail ? ` (${r.detail})` : ''}`}`,
    ),
  ];
  ctx.result(report, lines.join('\n'));
}

function reachability(err: unknown): Reachability {
  if (err instanceof ServiceCallError)
    return err.unreachable
      ? { reachable: false, detail: err.detail }
      : { reachable: true, detail: err.reason ?? err.detail };
  return { reachable: false, detail: (err as Error).message };
}

export async function unregister(ctx: AgentContext): Promise<void> {
  const device = ctx.device();
  const key = ctx.keystore.userKey();
  let deletedCredential: string | undefined;
  if (key) {
    try {
      await ctx
        .clients()
        .of('provisioning')
        .call('DeleteCredential', {
          deviceId: device.deviceId,
          credentialId: key.credentialId,
          deviceAssertion: await deviceAssertion(device, ctx.keystore.deviceKey()),
        });
      deletedCredential = key.credentialId;
    } catch (err) {
      if (!ctx.flags.force) {
        throw Object.assign(err as Error, {
          hint: 'the user key could not be deleted on the server; `unregister --force` forgets this device locally anyway',
        });
      }
    }
  }
  ctx.keystore.wipeAll();
  ctx.result(
    {
      deviceId: device.deviceId,
      deletedCredential: deletedCredential ?? null,
      keystoreWiped: true,
    },
    `unregistered: ${deletedCredential ? `user key ${deletedCredential} deleted on the server, ` : ''}keys and session of device ${device.deviceId} wiped from ${ctx.keystore.dir}\n` +
      '  (the device record stays in the tenant until an administrator deletes it)',
  );
}
