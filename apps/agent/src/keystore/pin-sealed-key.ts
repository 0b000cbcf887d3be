/**
 * A private key sealed under a PIN: scrypt derives a 256-bit key from the PIN
 * and a random salt, AES-256-GCM encrypts the PKCS#8 DER. A wrong PIN fails
 * the GCM tag check; nothing derived from the PIN is kept.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  type KeyObject,
  randomBytes,
  scryptSync,
} from 'node:crypto';

export interface ScryptParameters {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** 2^15 × 8 × 128 B = 32 MiB and ≈100 ms per attempt on these machines. */
export const DEFAULT_SCRYPT: ScryptParameters = { N: 2 ** 15, r: 8, p: 1 };

export interface SealedKey {
  version: 1;
  kdf: { name: 'scrypt'; salt: string } & ScryptParameters;
  cipher: { name: 'A256GCM'; iv: string; tag: string };
  /** The PKCS#8 DER of the private key, encrypted (base64url). */
  ciphertext: string;
}

export class WrongPinError extends Error {
  constructor() {
    super('wrong PIN');
    this.name = 'WrongPinError';
  }
}

function derive(pin: string, salt: Buffer, k: ScryptParameters): Buffer {
  return scryptSync(pin.normalize('NFKC'), salt, 32, {
    N: k.N,
    r: k.r,
    p: k.p,
    maxmem: 256 * k.N * k.r + 1024 * 1024,
  });
}

/** The AAD binds the ciphertext to its parameters and to what the key is for. */
function aad(purpose: string, k: SealedKey['kdf']): Buffer {
  return Buffer.from(`latchkey-agent/sealed-key/v1|${purpose}|${k.N}|${k.r}|${k.p}|${k.salt}`);
}

export function sealKey(
  privateKey: KeyObject,
  pin: string,
  purpose: string,
  params: ScryptParameters = DEFAULT_SCRYPT,
): SealedKey {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const kdf = { name: 'scrypt' as const, salt: salt.toString('base64url'), ...params };
  const key = derive(pin, salt, params);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(purpose, kdf));
  const plain = privateKey.export({ type: 'pkcs8', format: 'der' });
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  key.fill(0);
  return {
    version: 1,
    kdf,
    cipher: {
      name: 'A256GCM',
      iv: iv.toString('base64url'),
      tag: cipher.getAuthTag().toString('base64url'),
    },
    ciphertext: ciphertext.toString('base64url'),
  };
}

/** Opens a sealed key; throws WrongPinError when the PIN does not open it. */
export function openSealedKey(sealed: SealedKey, pin: string, purpose: string): KeyObject {
  const key = derive(pin, Buffer.from(sealed.kdf.salt, 'base64url'), sealed.kdf);
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.cipher.iv, 'base64url'));
  decipher.setAAD(aad(purpose, sealed.kdf));
  decipher.setAuthTag(Buffer.from(sealed.cipher.tag, 'base64url'));
  let plain: Buffer;
  try {
    plain = Buffer.concat([
      decipher.update(Buffer.from(sealed.ciphertext, 'base64url')),
      decipher.final(),
    ]);
  } catch {
    throw new WrongPinError();
  } finally {
    key.fill(0);
  }
  try {
    return createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
  } finally {
    plain.fill(0);
  }
}
