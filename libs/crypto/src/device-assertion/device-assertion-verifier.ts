/**
 * The one verifier of requests signed by a device (every service uses it): a
 * compact JWS signed by the device key, naming its certificate with `x5c` (the
 * device certificate) or `kid` (= the device id). Checks: the signature with
 * the certified key; the certificate is the device's current one, issued by
 * the tenant CA for this tenant and device, and within its validity; the
 * device is active (or in one of `acceptStatuses`); `aud`; `iat` within ±5
 * minutes; a `nonce` or `jti`.
 */
import { createHash, createPublicKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { deviceUrn } from '../x509/device-ca';
import { describeDeviceKey, publicKeyThumbprint } from '../x509/key-policy';
import { x509 } from '../x509/provider';

export type DeviceAssertionErrorCode =
  | 'MALFORMED_ASSERTION'
  | 'UNKNOWN_DEVICE'
  | 'DEVICE_NOT_ACTIVE'
  | 'UNTRUSTED_CERTIFICATE'
  | 'BAD_SIGNATURE'
  | 'WRONG_AUDIENCE'
  | 'STALE_ASSERTION'
  | 'NONCE_MISMATCH'
  | 'REPLAYED_ASSERTION';

export class DeviceAssertionError extends Error {
  constructor(
    readonly code: DeviceAssertionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DeviceAssertionError';
  }
}

export interface DeviceRecord {
  status: 'active' | 'disabled' | 'deleted' | string;
  /** The device's current certificate (PEM). */
  certificatePem: string;
}

/** Where the verifier looks up tenants' CAs and devices (a database here, GetDevice elsewhere). */
export interface DeviceDirectory<D extends DeviceRecord = DeviceRecord> {
  /** The tenant's device CA certificate (PEM), or null for an unknown tenant. */
  tenantCaCertificate(tenantId: string): Promise<string | null>;
  device(tenantId: string, deviceId: string): Promise<D | null>;
}

export interface DeviceAssertionVerifierOptions {
  /** The `aud` this service expects. */
  audience: string;
  /** Allowed distance of `iat` from now, seconds (default 300). */
  maxSkewSeconds?: number;
  /** Records a `jti` as used until `expiresAt`; returns false when it was used before. */
  rememberJti?: (jti: string, expiresAt: Date) => Promise<boolean>;
  /**
   * Device statuses whose assertions are accepted (default: only `active`). A
   * service that lets a disabled device learn its own state widens it; every
   * other check, the signature first, still applies.
   */
  acceptStatuses?: readonly string[];
}

export interface VerifiedDeviceAssertion<D extends DeviceRecord = DeviceRecord> {
  tenantId: string;
  deviceId: string;
  /** The device record the assertion was checked against (active, or of `acceptStatuses`). */
  device: D;
  claims: Record<string, unknown>;
  certificate: x509.X509Certificate;
  /** SHA-256 of the device key's SPKI, base64url. */
  keyThumbprint: string;
}

const ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384'];
const MAX_LENGTH = 32 * 1024;

const claimsShape = z.object({
  tid: z.string().uuid(),
  sub: z.string().uuid(),
  iat: z.number().int(),
  nonce: z.string().min(1).max(256).optional(),
  jti: z.string().min(1).max(256).optional(),
});

interface TrustedCertificate {
  certificate: x509.X509Certificate;
  key: KeyObject;
  der: Buffer;
  tenantId: string;
  deviceId: string;
  /** Worked out once with the certificate: publicKeyThumbprint and the key's JWS algorithms. */
  thumbprint: string;
  jwsAlgorithms: readonly string[];
}

export class DeviceAssertionVerifier<D extends DeviceRecord = DeviceRecord> {
  private readonly trusted = new Map<string, TrustedCertificate>();

  constructor(
    private readonly directory: DeviceDirectory<D>,
    private readonly options: DeviceAssertionVerifierOptions,
  ) {}

  /**
   * Verifies `jws`. `expected.tenantId`/`deviceId` pin the device the request is
   * about; `expected.nonce` requires that nonce (the caller consumes it).
   */
  async verify(
    jws: string,
    expected: { tenantId?: string; deviceId?: string; nonce?: string } = {},
    now = new Date(),
  ): Promise<VerifiedDeviceAssertion<D>> {
    if (typeof jws !== 'string' || jws.length > MAX_LENGTH)
      throw new DeviceAssertionError('MALFORMED_ASSERTION', 'not a compact JWS');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: z.infer<typeof claimsShape>;
    try {
      header = decodeProtectedHeader(jws);
      unverified = claimsShape.parse(decodeJwt(jws));
    } catch {
      throw new DeviceAssertionError(
        'MALFORMED_ASSERTION',
        'not a compact JWS with tid, sub (device id) and iat',
      );
    }
    if (!header.alg || !ALGORITHMS.includes(header.alg))
      throw new DeviceAssertionError('MALFORMED_ASSERTION', 'unsupported JWS algorithm');
    const { tid: tenantId, sub: deviceId } = unverified;
    if (
      (expected.tenantId && expected.tenantId !== tenantId) ||
      (expected.deviceId && expected.deviceId !== deviceId)
    )
      throw new DeviceAssertionError('UNKNOWN_DEVICE', 'the assertion is about another device');

    const [device, caPem] = await Promise.all([
      this.directory.device(tenantId, deviceId),
      this.directory.tenantCaCertificate(tenantId),
    ]);
    if (!device || !caPem) throw new DeviceAssertionError('UNKNOWN_DEVICE', 'unknown device');
    const {
      certificate: current,
      key,
      der: currentDer,
      thumbprint,
      jwsAlgorithms,
    } = await this.trustedCertificate(device.certificatePem, caPem, tenantId, deviceId, now);
    if (header.x5c) {
      const presented = Array.isArray(header.x5c) ? header.x5c[0] : undefined;
      const der =
        typeof presented === 'string' ? Buffer.from(presented, 'base64') : Buffer.alloc(0);
      if (der.length !== currentDer.length || !timingSafeEqual(der, currentDer))
        throw new DeviceAssertionError(
          'UNTRUSTED_CERTIFICATE',
          "the certificate is not the device's current certificate",
        );
    } else if (header.kid !== deviceId) {
      throw new DeviceAssertionError(
        'MALFORMED_ASSERTION',
        'x5c or kid (the device id) is required',
      );
    }
    if (!(this.options.acceptStatuses ?? ['active']).includes(device.status))
      throw new DeviceAssertionError('DEVICE_NOT_ACTIVE', `the device is ${device.status}`);

    const allowed = jwsAlgorithms.filter((a) => a === header.alg);
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(jws, key, {
        algorithms: allowed.length ? allowed : ['none-allowed'],
        audience: this.options.audience,
        currentDate: now,
        clockTolerance: this.options.maxSkewSeconds ?? 300,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud')
        throw new DeviceAssertionError('WRONG_AUDIENCE', 'the assertion is for another audience');
      if (err instanceof joseErrors.JWTExpired)
        throw new DeviceAssertionError('STALE_ASSERTION', 'the assertion has expired');
      throw new DeviceAssertionError('BAD_SIGNATURE', 'the assertion signature does not verify');
    }
    const skew = this.options.maxSkewSeconds ?? 300;
    if (Math.abs(now.getTime() / 1000 - unverified.iat) > skew)
      throw new DeviceAssertionError('STALE_ASSERTION', `iat must be within ${skew} s of now`);
    if (!unverified.nonce && !unverified.jti)
      throw new DeviceAssertionError('MALFORMED_ASSERTION', 'a nonce or jti is required');
    if (expected.nonce !== undefined && unverified.nonce !== expected.nonce)
      throw new DeviceAssertionError('NONCE_MISMATCH', 'the assertion does not carry the nonce');
    if (unverified.jti && this.options.rememberJti) {
      const fresh = await this.options.rememberJti(
        `${tenantId}:${deviceId}:${unverified.jti}`,
        new Date((unverified.iat + skew) * 1000),
      );
      if (!fresh) throw new DeviceAssertionError('REPLAYED_ASSERTION', 'the jti was used before');
    }
    return {
      tenantId,
      deviceId,
      device,
      claims: payload,
      certificate: current,
      keyThumbprint: thumbprint,
    };
  }

  /**
   * The device certificate, checked against the tenant CA (signature, SAN) once
   * per (CA, certificate) and remembered; its validity period is checked on
   * every call. Only certificates that passed are remembered.
   */
  private async trustedCertificate(
    certificatePem: string,
    caPem: string,
    tenantId: string,
    deviceId: string,
    now: Date,
  ): Promise<TrustedCertificate> {
    const id = createHash('sha256')
      .update(caPem)
      .update('\0')
      .update(certificatePem)
      .digest('base64');
    let trusted = this.trusted.get(id);
    if (!trusted) {
      const certificate = new x509.X509Certificate(certificatePem);
      await this.checkCertificate(certificate, caPem, tenantId, deviceId, now);
      const der = Buffer.from(certificate.rawData);
      const key = createPublicKey({
        key: Buffer.from(certificate.publicKey.rawData),
        format: 'der',
        type: 'spki',
      });
      trusted = {
        certificate,
        key,
        der,
        tenantId,
        deviceId,
        thumbprint: publicKeyThumbprint(key),
        jwsAlgorithms: describeDeviceKey(key).jwsAlgorithms,
      };
      if (this.trusted.size >= 50_000) this.trusted.clear();
      this.trusted.set(id, trusted);
    }
    if (
      trusted.tenantId !== tenantId ||
      trusted.deviceId !== deviceId ||
      now < trusted.certificate.notBefore ||
      now > trusted.certificate.notAfter
    )
      throw new DeviceAssertionError(
        'UNTRUSTED_CERTIFICATE',
        'the device certificate is not valid for this tenant and device',
      );
    return trusted;
  }

  private async checkCertificate(
    cert: x509.X509Certificate,
    caPem: string,
    tenantId: string,
    deviceId: string,
    now: Date,
  ): Promise<void> {
    const ca = new x509.X509Certificate(caPem);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const urns = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
    const signedByCa = await cert
      .verify({ publicKey: ca.publicKey, date: now, signatureOnly: false })
      .catch(() => false);
    if (!signedByCa || !urns.includes(deviceUrn(tenantId, deviceId)))
      throw new DeviceAssertionError(
        'UNTRUSTED_CERTIFICATE',
        'the device certificate is not valid for this tenant and device',
      );
  }
}
