/** provision, reset-pin, login and refresh: the user key, its PIN and the key session. */
import { generateKeyPairSync, type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { AgentContext, DeviceState, SessionState } from '../cli/agent-context';
import { isoTime } from '../cli/timestamps';
import { spkiThumbprint } from '../device/device-keys';
import { DEFAULT_PIN_POLICY, pinProblem } from '../keystore/pin-policy';
import { KeystoreError } from '../keystore/software-keystore';
import {
  deviceAssertion,
  discoverIssuer,
  keySignInRequest,
  openSessionKey,
  proofOfPossession,
  prtProof,
} from '../protocol/device-protocol';
import { UsageError } from '../server/endpoints';
import { primarySignIn } from './primary-sign-in';

async function newPin(ctx: AgentContext): Promise<string> {
  const minLength = Number(ctx.flags['pin-min-length'] ?? DEFAULT_PIN_POLICY.minLength);
  const policy = { ...DEFAULT_PIN_POLICY, minLength };
  for (let attempt = 0; attempt < 3; attempt++) {
    const pin = await ctx.terminal.secret(`New PIN (at least ${policy.minLength} characters): `);
    const problem = pinProblem(pin, policy);
    if (problem) {
      if (!ctx.terminal.interactive) throw new UsageError(problem);
      process.stderr.write(`${problem}\n`);
      continue;
    }
    const again = await ctx.terminal.secret('Confirm the PIN: ');
    if (again === pin) return pin;
    if (!ctx.terminal.interactive) throw new UsageError('the two PINs differ');
    process.stderr.write('the two PINs differ\n');
  }
  throw new UsageError('no acceptable PIN given');
}

/** Begin → Complete provisioning of a new software user key; returns it with its credential. */
async function provisionKey(ctx: AgentContext, device: DeviceState, accessToken: string) {
  const provisioning = ctx.clients().of('provisioning');
  const begun = await provisioning.call(
    'BeginProvisioning',
    {
      deviceId: device.deviceId,
      deviceAssertion: await deviceAssertion(device, ctx.keystore.deviceKey()),
    },
    accessToken,
  );
  const policy = begun.policy as { requireTpm: boolean; allowedAlgorithms: string[] };
  if (policy.requireTpm)
    throw new UsageError(
      'the tenant requires TPM-backed keys: this device uses the software keystore',
    );
  const allowed = policy.allowedAlgorithms ?? [];
  const algorithm: 'ES256' | 'RS256' =
    allowed.length === 0 || allowed.includes('ES256') ? 'ES256' : 'RS256';
  if (!allowed.includes(algorithm) && allowed.length)
    throw new UsageError(`the tenant allows only ${allowed.join(', ')}`);
  const privateKey: KeyObject = (
    algorithm === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 })
  ).privateKey;
  const publicKeyJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<
    string,
    unknown
  >;
  const challenge = begun.challenge as string;
  const done = await provisioning.call(
    'CompleteProvisioning',
    {
      deviceId: device.deviceId,
      challenge,
      publicKeyJwk: JSON.stringify(publicKeyJwk),
      algorithm,
      proofOfPossession: await proofOfPossession(challenge, algorithm, privateKey),
      friendlyName:
        (ctx.flags['friendly-name'] as string | undefined) ??
        `${device.displayName} (latchkey-agent)`,
    },
    accessToken,
  );
  const credential = done.credential as { credentialId: string; attestationLevel: string };
  if (credential.credentialId !== spkiThumbprint(privateKey))
    throw new Error('provisioning returned a credential id that is not the key thumbprint');
  return {
    privateKey,
    publicKeyJwk,
    algorithm,
    credentialId: credential.credentialId,
    replaced: (done.replacedCredentialIds as string[]) ?? [],
  };
}

export async function provision(ctx: AgentContext): Promise<void> {
  await provisionOrReset(ctx, false);
}

/**
 * Destructive PIN reset (as in Windows Hello): the old key is forgotten, a new
 * one is provisioned after password + TOTP, under a new PIN; the server revokes
 * the replaced key.
 */
export async function resetPin(ctx: AgentContext): Promise<void> {
  await provisionOrReset(ctx, true);
}

async function provisionOrReset(ctx: AgentContext, reset: boolean): Promise<void> {
  const device = ctx.device();
  const existing = ctx.keystore.userKey();
  if (existing && !reset)
    throw new KeystoreError(
      'KEY_EXISTS',
      `a user key (${existing.credentialId}, ${existing.username}) is provisioned already: use \`latchkey-agent reset-pin\` to replace it`,
    );
  const signedIn = await primarySignIn(ctx, device.tenantId);
  if (reset && existing && existing.userId !== signedIn.userId)
    throw new UsageError(
      `the key on this device belongs to ${existing.username}: sign in as that user`,
    );
  const pin = await newPin(ctx);
  const key = await provisionKey(ctx, device, signedIn.accessToken);
  if (reset) ctx.keystore.removeUserKey();
  ctx.keystore.storeUserKey(
    {
      credentialId: key.credentialId,
      userId: signedIn.userId,
      username: signedIn.username,
      algorithm: key.algorithm,
      publicKeyJwk: key.publicKeyJwk,
      storage: 'software',
      createdAt: new Date().toISOString(),
    },
    key.privateKey,
    pin,
  );
  ctx.result(
    {
      credentialId: key.credentialId,
      userId: signedIn.userId,
      algorithm: key.algorithm,
      replacedCredentialIds: key.replaced,
    },
    `${reset ? 'PIN reset: new' : 'provisioned'} user key ${key.credentialId} (${key.algorithm}, software keystore) for ${signedIn.username}` +
      (key.replaced.length ? `\n  replaced (revoked): ${key.replaced.join(', ')}` : ''),
  );
}

async function issuerOf(ctx: AgentContext, device: DeviceState): Promise<string> {
  if (device.issuer) return device.issuer;
  const issuer = await discoverIssuer(device.endpoints.authUrl);
  ctx.keystore.saveDevice({ ...device, issuer });
  return issuer;
}

interface KeySessionTokens {
  idToken: string;
  accessToken: string;
  accessTokenExpireTime: unknown;
  refreshToken: string;
  refreshTokenExpireTime: unknown;
  sessionId: string;
}

/** The claims worth showing (never the tokens themselves). */
function claimsReport(tokens: { idToken: string; accessToken: string; sessionId: string }) {
  const pick = (jwt: string) => {
    const c = decodeJwt(jwt);
    const keep = [
      'iss',
      'sub',
      'aud',
      'tid',
      'amr',
      'did',
      'cid',
      'auth_time',
      'iat',
      'exp',
      'name',
      'preferred_username',
      'roles',
      'scope',
      'sid',
    ];
    return Object.fromEntries(Object.entries(c).filter(([k]) => keep.includes(k)));
  };
  return {
    sessionId: tokens.sessionId,
    idToken: tokens.idToken ? pick(tokens.idToken) : null,
    accessToken: pick(tokens.accessToken),
  };
}

function humanClaims(report: ReturnType<typeof claimsReport>): string {
  const a = report.accessToken;
  const exp = typeof a.exp === 'number' ? new Date(a.exp * 1000).toISOString() : '?';
  return (
    `  user ${String(a.sub)}  tenant ${String(a.tid)}  device ${String(a.did ?? '?')}\n` +
    `  amr ${JSON.stringify(a.amr ?? [])}  credential ${String(a.cid ?? '?')}\n` +
    `  session ${report.sessionId}  access token until ${exp}`
  );
}

function storeSession(
  ctx: AgentContext,
  userId: string,
  tokens: KeySessionTokens,
  sessionKey: string,
  previous?: SessionState,
) {
  const session: SessionState = {
    sessionId: tokens.sessionId,
    userId,
    refreshToken: tokens.refreshToken,
    refreshTokenExpireTime: isoTime(tokens.refreshTokenExpireTime),
    accessToken: tokens.accessToken,
    accessTokenExpireTime: isoTime(tokens.accessTokenExpireTime),
    idToken: tokens.idToken,
    sessionKey,
    obtainedAt: previous?.obtainedAt ?? new Date().toISOString(),
    ...(previous ? { refreshedAt: new Date().toISOString() } : {}),
  };
  ctx.keystore.saveSession(session);
}

export async function login(ctx: AgentContext): Promise<void> {
  const device = ctx.device();
  ctx.keystore.assertPinUsable();
  const pin = await ctx.terminal.secret('PIN: ');
  const { record, privateKey } = ctx.keystore.unlockUserKey(pin);
  const issuer = await issuerOf(ctx, device);
  const auth = ctx.clients().of('auth');
  const { nonce } = (await auth.call('GetNonce', {
    tenantId: device.tenantId,
    deviceId: device.deviceId,
    purpose: 'NONCE_PURPOSE_SIGN_IN',
  })) as { nonce: string };
  const request = await keySignInRequest(
    device,
    ctx.keystore.deviceKey(),
    record,
    privateKey,
    issuer,
    nonce,
  );
  const res = await auth.call('SignInWithKey', { request });
  const tokens = res.tokens as KeySessionTokens;
  const sessionKey = await openSessionKey(res.sessionKeyJwe as string, ctx.keystore.transportKey());
  storeSession(ctx, record.userId, tokens, sessionKey.toString('base64url'));
  sessionKey.fill(0);
  const report = claimsReport(tokens);
  ctx.result(
    report,
    `signed in as ${record.username} with the key ${record.credentialId}\n${humanClaims(report)}`,
  );
}

export async function refresh(ctx: AgentContext): Promise<void> {
  const device = ctx.device();
  const session = ctx.keystore.session<SessionState>();
  if (!session) throw new UsageError('no session on this device: run `latchkey-agent login`');
  const issuer = await issuerOf(ctx, device);
  const auth = ctx.clients().of('auth');
  const { nonce } = (await auth.call('GetNonce', {
    tenantId: device.tenantId,
    deviceId: device.deviceId,
    purpose: 'NONCE_PURPOSE_REFRESH',
  })) as { nonce: string };
  const sessionKey = Buffer.from(session.sessionKey, 'base64url');
  const proof = await prtProof(device, sessionKey, issuer, nonce, randomBytes(32));
  sessionKey.fill(0);
  const res = await auth.call('RefreshWithPrt', { refreshToken: session.refreshToken, proof });
  const tokens = res.tokens as KeySessionTokens;
  // The PRT rotates: the one just used no longer works, its successor is stored.
  storeSession(ctx, session.userId, tokens, session.sessionKey, session);
  const report = claimsReport(tokens);
  ctx.result(report, `refreshed session ${tokens.sessionId}\n${humanClaims(report)}`);
}
