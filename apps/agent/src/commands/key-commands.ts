/** provision, reset-pin, login and refresh: the user key, its PIN and the key session. */
import { generateKeyPairSync, type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { AgentContext, DeviceState, SessionState } from '../cli/agent-context';
import { isoTime } from '../cli/timestamps';
import { spkiThumbprint, tctiFrom } from '../device/device-keys';
import { DEFAULT_PIN_POLICY, pinProblem } from '../keystore/pin-policy';
import { KeystoreError } from '../keystore/software-keystore';
import {
  deviceAssertion,
  discoverIssuer,
  type JwsSigner,
  keySignInRequest,
  openSessionKey,
  proofOfPossession,
  prtProof,
  softwareSigner,
} from '../protocol/device-protocol';
import { aikOf } from '../tpm/tpm-device-keys';
import { TpmUserKeys, tpmUserKeySigner } from '../tpm/tpm-user-key';
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

/** Begin → Complete provisioning of a new user key (software, or in the TPM with --tpm) under `pin`. */
async function provisionKey(
  ctx: AgentContext,
  device: DeviceState,
  accessToken: string,
  pin: string,
  tcti: string | undefined,
) {
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
  const inTpm = tcti !== undefined;
  // The AIK of a TPM-mode device attests a user key made in the same TPM.
  const tpmDevice = ctx.keystore.tpmDeviceKeys();
  const aik = inTpm && tpmDevice?.tcti === tcti ? aikOf(tpmDevice) : undefined;
  if (policy.requireTpm && !inTpm)
    throw new UsageError('the tenant requires TPM-backed keys: provision with --tpm');
  if (policy.requireTpm && !aik)
    throw new UsageError(
      'the tenant requires TPM key attestations: register the device in TPM mode (register --tpm --aik-cert …)',
    );
  const allowed = policy.allowedAlgorithms ?? [];
  const algorithm: 'ES256' | 'RS256' =
    allowed.length === 0 || allowed.includes('ES256') || inTpm ? 'ES256' : 'RS256';
  if (allowed.length && !allowed.includes(algorithm))
    throw new UsageError(`the tenant allows only ${allowed.join(', ')}`);
  let publicKey: KeyObject;
  let signer: JwsSigner;
  let privateKey: KeyObject | undefined;
  let tpm: { tcti: string; public: string; private: string } | undefined;
  let keyAttestation: object | undefined;
  const challenge = begun.challenge as string;
  if (tcti !== undefined) {
    const created = new TpmUserKeys(tcti).create(pin, aik && { aik, challenge });
    keyAttestation = created.attestation;
    publicKey = created.publicKey;
    tpm = {
      tcti,
      public: created.blobs.public.toString('base64url'),
      private: created.blobs.private.toString('base64url'),
    };
    signer = {
      alg: 'ES256',
      sign: async (input) => new TpmUserKeys(tcti).sign(created.blobs, pin, input),
    };
  } else {
    privateKey = (
      algorithm === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 })
    ).privateKey;
    publicKey = createPublicKey(privateKey);
    signer = softwareSigner(privateKey, algorithm);
  }
  const publicKeyJwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const done = await provisioning.call(
    'CompleteProvisioning',
    {
      deviceId: device.deviceId,
      challenge,
      publicKeyJwk: JSON.stringify(publicKeyJwk),
      algorithm,
      proofOfPossession: await proofOfPossession(challenge, signer),
      ...(keyAttestation ? { keyAttestation } : {}),
      friendlyName:
        (ctx.flags['friendly-name'] as string | undefined) ??
        `${device.displayName} (latchkey-agent${inTpm ? ', TPM' : ''})`,
    },
    accessToken,
  );
  const credential = done.credential as { credentialId: string; attestationLevel: string };
  if (credential.credentialId !== spkiThumbprint(publicKey))
    throw new Error('provisioning returned a credential id that is not the key thumbprint');
  return {
    privateKey,
    tpm,
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
  // A reset keeps the key where it was (the TPM) unless told otherwise; a TPM device keeps its user keys in its TPM.
  const tcti = ctx.flags.tpm
    ? tctiFrom(ctx.flags)
    : reset && existing?.tpm
      ? existing.tpm.tcti
      : ctx.keystore.tpmDeviceKeys()?.tcti;
  const key = await provisionKey(ctx, device, signedIn.accessToken, pin, tcti);
  if (reset) ctx.keystore.removeUserKey();
  ctx.keystore.storeUserKey(
    {
      credentialId: key.credentialId,
      userId: signedIn.userId,
      username: signedIn.username,
      algorithm: key.algorithm,
      publicKeyJwk: key.publicKeyJwk,
      storage: key.tpm ? 'tpm' : 'software',
      createdAt: new Date().toISOString(),
      ...(key.tpm ? { tpm: key.tpm } : {}),
    },
    key.privateKey,
    pin,
  );
  ctx.result(
    {
      credentialId: key.credentialId,
      userId: signedIn.userId,
      algorithm: key.algorithm,
      storage: key.tpm ? 'tpm' : 'software',
      replacedCredentialIds: key.replaced,
    },
    `${reset ? 'PIN reset: new' : 'provisioned'} user key ${key.credentialId} (${key.algorithm}, ${key.tpm ? 'in the TPM' : 'software keystore'}) for ${signedIn.username}` +
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
  const stored = ctx.keystore.userKey();
  // Software keys: the agent's anti-hammering; TPM keys: the TPM's own.
  if (stored?.storage !== 'tpm') ctx.keystore.assertPinUsable();
  const pin = await ctx.terminal.secret('PIN: ');
  let record = stored!;
  let signer: JwsSigner;
  if (record.storage === 'tpm') signer = tpmUserKeySigner(record, pin);
  else {
    const unlocked = ctx.keystore.unlockUserKey(pin);
    record = unlocked.record;
    signer = softwareSigner(unlocked.privateKey, record.algorithm);
  }
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
    signer,
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
