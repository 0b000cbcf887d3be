/**
 * The enrolled world the attack-class suite attacks, made through the public
 * contracts of the running services with the existing test helpers: a tenant
 * (auth, by an operator), users with password + TOTP (auth's seed code and
 * sign-in), devices registered with join tokens (registration), user keys
 * provisioned after the second factor (provisioning), and key sign-in
 * requests built by the agent's own protocol code (apps/agent). Everything
 * an attacker varies is a parameter of the helpers below.
 */
import { createPublicKey, KeyObject, type webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SignJWT } from 'jose';
import {
  createTenant,
  type DeviceMaterial,
  EC,
  enrolDevice,
  newUserKey,
  provisionKey,
  reasonOf,
  waitForDeviceCa,
} from '@latchkey/testing';
import {
  keySignInRequest,
  softwareSigner,
  type JwsSigner,
  type UserCredential,
} from '../../../apps/agent/src/protocol/device-protocol';
import {
  authEnv,
  outboxEvents,
  signedInAccount,
  settles,
  unique,
} from '../../../apps/auth/e2e/support';
import { bearer, type Clients, operator } from '../../fuzz/support/tenants';

/** auth's issuer URL: the `aud` of key sign-in requests and the `iss` of tokens. */
export const ISSUER = authEnv().AUTH_ISSUER!;

export interface Person {
  tenantId: string;
  userId: string;
  username: string;
  password: string;
  totpSecret: string;
  /** An access token from password + TOTP. */
  token: string;
}

export interface Device {
  tenantId: string;
  deviceId: string;
  keys: webcrypto.CryptoKeyPair;
  /** The device key as node:crypto sees it (the agent's protocol code signs with it). */
  privateKey: KeyObject;
  certificatePem: string;
}

export interface Key {
  device: Device;
  person: Person;
  credential: UserCredential;
  signer: JwsSigner;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface Refusal {
  code: number;
  reason?: string;
  details: string;
}

/** The error a call fails with (the test fails if it succeeds). */
export async function refusal(p: Promise<unknown>): Promise<Refusal> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('expected the call to be refused, but it succeeded');
  const e = err as { code: number; details?: string };
  return { code: e.code, reason: reasonOf(err), details: e.details ?? '' };
}

export class SecurityTenant {
  private constructor(
    readonly c: Clients,
    readonly tenantId: string,
    readonly name: string,
    readonly admin: Person,
  ) {}

  /** A new tenant with the given lockout policy and a signed-in admin. */
  static async create(
    c: Clients,
    label: string,
    lockoutPolicy: { threshold: number; windowSeconds: number; durationSeconds: number },
  ): Promise<SecurityTenant> {
    const name = unique(label);
    const tenantId = await createTenant(c.admin, bearer(await operator(c)), {
      name,
      displayName: name,
      lockoutPolicy,
    });
    const t = new SecurityTenant(c, tenantId, name, undefined as unknown as Person);
    const admin = await t.person('admin', ['admin']);
    const tenant = new SecurityTenant(c, tenantId, name, admin);
    // registration makes the tenant's device CA when it sees tenant.created.
    await waitForDeviceCa(c.registration, tenantId);
    return tenant;
  }

  /** A user with password and active TOTP (auth's seed code), signed in. */
  async person(label: string, roles: string[] = ['user']): Promise<Person> {
    return signedInAccount(this.c.auth, this.tenantId, label, roles);
  }

  /** A join token, then RegisterDevice with a fresh device key (or the given CSR for it). */
  async device(label: string, material?: DeviceMaterial): Promise<Device & { chainPem: string[] }> {
    const d = await enrolDevice(this.c.registration, this.tenantId, bearer(this.admin.token), {
      material,
      joinToken: { ttlSeconds: 600 },
      extra: { displayName: `${label}-device` },
    });
    return {
      tenantId: d.tenantId,
      deviceId: d.deviceId,
      keys: d.keys,
      privateKey: KeyObject.from(d.keys.privateKey),
      certificatePem: d.certificatePem,
      chainPem: d.chainPem,
    };
  }

  /** Provisioning as a device does it: BeginProvisioning (device assertion), CompleteProvisioning (proof). */
  async provision(device: Device, person: Person): Promise<Key> {
    const key = newUserKey('ES256');
    const { credentialId } = await provisionKey(
      this.c.provisioning,
      device,
      bearer(person.token),
      key,
    );
    return {
      device,
      person,
      credential: { userId: person.userId, credentialId, algorithm: 'ES256' },
      signer: softwareSigner(key.privateKey, 'ES256'),
      privateKey: key.privateKey,
      publicKey: createPublicKey(key.privateKey),
    };
  }

  async nonce(
    device: Device,
    purpose: 'NONCE_PURPOSE_SIGN_IN' | 'NONCE_PURPOSE_REFRESH' = 'NONCE_PURPOSE_SIGN_IN',
  ): Promise<string> {
    const res = await this.c.auth.GetNonce!({
      tenantId: this.tenantId,
      deviceId: device.deviceId,
      purpose,
    });
    return res.nonce as string;
  }

  /** A well-formed key sign-in request, as the agent sends it. */
  async signInRequest(key: Key, nonce?: string): Promise<string> {
    return keySignInRequest(
      key.device,
      key.device.privateKey,
      key.credential,
      key.signer,
      ISSUER,
      nonce ?? (await this.nonce(key.device)),
    );
  }
}

/**
 * A request signed by `device`'s key with the outer claims a sign-in request
 * has, around any `userAssertion` (the attacker's splice), with extra header
 * parameters (a foreign kid, an x5c).
 */
export function outerRequest(
  device: Device,
  nonce: string,
  userAssertion: string,
  header: Record<string, unknown> = {},
  signingKey: webcrypto.CryptoKey = device.keys.privateKey,
): Promise<string> {
  return new SignJWT({ tid: device.tenantId, nonce, user_assertion: userAssertion })
    .setProtectedHeader({ kid: device.deviceId, ...header, alg: 'ES256' })
    .setSubject(device.deviceId)
    .setAudience(ISSUER)
    .setIssuedAt()
    .sign(signingKey);
}

/** A user assertion with the claims the agent puts in one, signed by `signer` under `kid`. */
export function userAssertionWith(
  signer: KeyObject,
  claims: Record<string, unknown>,
  kid: string,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ aud: ISSUER, iat: now, exp: now + 120, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid })
    .sign(signer);
}

const b64 = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A compact JWS with `alg: none` and an empty signature. */
export function unsignedJws(header: Record<string, unknown>, payload: object): string {
  return `${b64({ ...header, alg: 'none' })}.${b64(payload)}.`;
}

/** An HS256 JWS keyed with `secret` (the classic confusion: a public key used as an HMAC key). */
export function hmacJws(
  header: Record<string, unknown>,
  payload: object | string,
  secret: Uint8Array,
): Promise<string> {
  const jwt =
    typeof payload === 'string'
      ? new SignJWT({}).setProtectedHeader({ ...header, alg: 'HS256' })
      : new SignJWT(payload as Record<string, unknown>).setProtectedHeader({
          ...header,
          alg: 'HS256',
        });
  return jwt.sign(secret);
}

/** Reasons of the `auth.sign_in.failed` events about `deviceId`, in order. */
export async function failureReasons(where: Record<string, string>): Promise<string[]> {
  const rows = await outboxEvents('dev.latchkey.auth.sign_in.failed.v1', where);
  return rows.map((r) => String(r.data.reason));
}

/** Waits until the failure events about `where` after the first `before` are `expected`. */
export async function expectNewFailures(
  where: Record<string, string>,
  before: number,
  expected: string[],
): Promise<void> {
  await settles(async () => {
    expect((await failureReasons(where)).slice(before)).toEqual(expected);
  }, 15_000);
}

/** A self-signed certificate naming `deviceId` in the device URN form, made by an attacker's key. */
export async function forgedDeviceCertificate(
  tenantId: string,
  deviceId: string,
  keys: webcrypto.CryptoKeyPair,
): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${deviceId}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys: keys as unknown as Parameters<
      typeof x509.X509CertificateGenerator.createSelfSigned
    >[0]['keys'],
    signingAlgorithm: EC,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: `urn:latchkey:tenant:${tenantId}:device:${deviceId}` },
      ]),
    ],
  });
  return Buffer.from(cert.rawData).toString('base64');
}
