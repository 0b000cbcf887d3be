/** Parsers of the TPM 2.0 structures in a WebAuthn "tpm" statement (TPM 2.0 Part 2). */
import { createHash } from 'node:crypto';

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  ECC: 0x0023,
} as const;
export const TPM_ECC_CURVE: Record<number, string> = {
  0x0003: 'P-256',
  0x0004: 'P-384',
  0x0005: 'P-521',
};
const HASH_OF_ALG: Record<number, string> = {
  [TPM_ALG.SHA1]: 'sha1',
  [TPM_ALG.SHA256]: 'sha256',
  [TPM_ALG.SHA384]: 'sha384',
  [TPM_ALG.SHA512]: 'sha512',
};
/** TPMA_OBJECT bits that prove a key cannot leave the TPM. */
export const TPMA_OBJECT = { fixedTPM: 0x2, fixedParent: 0x10, sensitiveDataOrigin: 0x20 } as const;

export class TpmParseError extends Error {}

class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  u8() {
    this.need(1);
    return this.buf.readUInt8(this.offset++);
  }
  u16() {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32() {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u64() {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  bytes(n: number) {
    this.need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return Buffer.from(v);
  }
  /** A TPM2B_*: UINT16 size, then that many bytes. */
  sized() {
    return this.bytes(this.u16());
  }
  end() {
    if (this.offset !== this.buf.length) throw new TpmParseError('trailing bytes');
  }
  private need(n: number) {
    if (this.offset + n > this.buf.length) throw new TpmParseError('truncated structure');
  }
}

export interface TpmsAttest {
  magic: number;
  type: number;
  qualifiedSigner: Buffer;
  extraData: Buffer;
  /** TPMS_CERTIFY_INFO.name: the name of the certified object. */
  certifiedName: Buffer;
  certifiedQualifiedName: Buffer;
}

export function parseTpmsAttest(buf: Buffer): TpmsAttest {
  const r = new Reader(buf);
  const magic = r.u32();
  const type = r.u16();
  const qualifiedSigner = r.sized();
  const extraData = r.sized();
  r.u64(); // clockInfo.clock
  r.u32(); // resetCount
  r.u32(); // restartCount
  r.u8(); // safe
  r.u64(); // firmwareVersion
  if (type !== TPM_ST_ATTEST_CERTIFY)
    return {
      magic,
      type,
      qualifiedSigner,
      extraData,
      certifiedName: Buffer.alloc(0),
      certifiedQualifiedName: Buffer.alloc(0),
    };
  const certifiedName = r.sized();
  const certifiedQualifiedName = r.sized();
  r.end();
  return { magic, type, qualifiedSigner, extraData, certifiedName, certifiedQualifiedName };
}

export type TpmtPublic =
  | {
      type: 'rsa';
      nameAlg: number;
      objectAttributes: number;
      keyBits: number;
      exponent: number;
      modulus: Buffer;
    }
  | { type: 'ecc'; nameAlg: number; objectAttributes: number; curve: string; x: Buffer; y: Buffer };

function skipScheme(r: Reader) {
  const scheme = r.u16();
  if (scheme !== TPM_ALG.NULL) r.u16(); // details.hashAlg
}

export function parseTpmtPublic(buf: Buffer): TpmtPublic {
  const r = new Reader(buf);
  const type = r.u16();
  const nameAlg = r.u16();
  const objectAttributes = r.u32();
  r.sized(); // authPolicy
  const symmetric = r.u16();
  if (symmetric !== TPM_ALG.NULL) {
    r.u16(); // keyBits
    r.u16(); // mode
  }
  if (type === TPM_ALG.RSA) {
    skipScheme(r);
    const keyBits = r.u16();
    const exponent = r.u32() || 65537; // 0 means the default exponent
    const modulus = r.sized();
    r.end();
    return { type: 'rsa', nameAlg, objectAttributes, keyBits, exponent, modulus };
  }
  if (type === TPM_ALG.ECC) {
    skipScheme(r);
    const curveId = r.u16();
    skipScheme(r); // kdf
    const x = r.sized();
    const y = r.sized();
    r.end();
    const curve = TPM_ECC_CURVE[curveId];
    if (!curve) throw new TpmParseError(`unsupported ECC curve ${curveId}`);
    return { type: 'ecc', nameAlg, objectAttributes, curve, x, y };
  }
  throw new TpmParseError(`unsupported key type ${type}`);
}

/** TPM object name: nameAlg (UINT16) ‖ H_nameAlg(TPMT_PUBLIC). */
export function tpmObjectName(pubArea: Buffer, nameAlg: number): Buffer {
  const hash = HASH_OF_ALG[nameAlg];
  if (!hash) throw new TpmParseError(`unsupported name algorithm ${nameAlg}`);
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(nameAlg);
  return Buffer.concat([alg, createHash(hash).update(pubArea).digest()]);
}
