/**
 * Which device keys latchkey accepts: RSA 2048–4096 bits or EC P-256/P-384.
 * Everything else (small RSA, other curves, Ed25519, DSA, …) is refused.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { X509Error } from './x509-error';

export interface DeviceKeyDescription {
  /** e.g. "RSA-2048", "EC-P-256". */
  kind: string;
  /** WebCrypto import parameters for this key (for signature checks). */
  jwsAlgorithms: readonly string[];
}

const CURVES: Record<string, { name: string; jws: string }> = {
  prime256v1: { name: 'P-256', jws: 'ES256' },
  'P-256': { name: 'P-256', jws: 'ES256' },
  secp384r1: { name: 'P-384', jws: 'ES384' },
  'P-384': { name: 'P-384', jws: 'ES384' },
};

/** Checks the key against the device-key policy; throws X509Error KEY_NOT_ALLOWED. */
export function describeDeviceKey(key: KeyObject): DeviceKeyDescription {
  if (key.type !== 'public') throw new X509Error('KEY_NOT_ALLOWED', 'not a public key');
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048 || bits > 4096) {
      throw new X509Error('KEY_NOT_ALLOWED', `RSA keys must have 2048 to 4096 bits (got ${bits})`);
    }
    return { kind: `RSA-${bits}`, jwsAlgorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384'] };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[details.namedCurve ?? ''];
    if (!curve) {
      throw new X509Error(
        'KEY_NOT_ALLOWED',
        `EC keys must use P-256 or P-384 (got ${details.namedCurve ?? 'unknown'})`,
      );
    }
    return { kind: `EC-${curve.name}`, jwsAlgorithms: [curve.jws] };
  }
  throw new X509Error(
    'KEY_NOT_ALLOWED',
    `key type ${key.asymmetricKeyType ?? 'unknown'} is not allowed (RSA or EC P-256/P-384)`,
  );
}

/** Parses a public key given as SPKI PEM or as JWK JSON text. */
export function parsePublicKey(text: string): KeyObject {
  try {
    const trimmed = text.trim();
    const key = trimmed.startsWith('{')
      ? createPublicKey({ key: JSON.parse(trimmed) as JsonWebKey, format: 'jwk' })
      : trimmed.startsWith('-----BEGIN PUBLIC KEY-----')
        ? createPublicKey(trimmed)
        : undefined;
    if (key?.type === 'public') return key;
  } catch {
    // fall through
  }
  throw new X509Error('MALFORMED_PUBLIC_KEY', 'must be a public key as SPKI PEM or JWK');
}

/** SHA-256 of the DER SubjectPublicKeyInfo, base64url: the key's thumbprint in latchkey. */
export function publicKeyThumbprint(key: KeyObject | Buffer): string {
  const spki = Buffer.isBuffer(key) ? key : key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64url');
}

export interface VerifiedTransportKey {
  /** SPKI PEM (a JWK is converted; a PEM is kept as sent, trimmed). */
  pem: string;
  /** publicKeyThumbprint() of the key. */
  thumbprint: string;
}

/**
 * A device's transport public key (SPKI PEM or JWK JSON text), held to the
 * device-key policy. Throws X509Error MALFORMED_PUBLIC_KEY or KEY_NOT_ALLOWED.
 */
export function verifyTransportKey(text: string): VerifiedTransportKey {
  const key = parsePublicKey(text);
  describeDeviceKey(key);
  const trimmed = text.trim();
  return {
    pem: trimmed.startsWith('{')
      ? key.export({ type: 'spki', format: 'pem' }).toString()
      : trimmed + '\n',
    thumbprint: publicKeyThumbprint(key),
  };
}
