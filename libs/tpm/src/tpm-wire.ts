/**
 * TPM 2.0 wire formats the tpm2-tools driver needs (TPM 2.0 Part 2/3): the
 * TPM2_Certify command with qualifying data (tpm2-tools 5.4's tpm2_certify
 * cannot pass it) and its response, and ECDSA signatures as DER or JOSE r‖s.
 * Pure functions, no TPM.
 */

const TPM_ST_SESSIONS = 0x8002;
const TPM_CC_CERTIFY = 0x148;
const TPM_RS_PW = 0x40000009;
const TPM_ALG_NULL = 0x0010;
const TPM_ALG_RSASSA = 0x0014;
const TPM_ALG_ECDSA = 0x0018;

/** TPM_RC_AUTH_FAIL / TPM_RC_BAD_AUTH (format-one codes without the parameter/session number). */
export const TPM_RC_AUTH_FAIL = 0x08e;
export const TPM_RC_BAD_AUTH = 0x0a2;
export const TPM_RC_LOCKOUT = 0x921;

/** The error code of a TPM response code, without the handle/parameter/session number of format-one codes. */
export function tpmErrorCode(rc: number): number {
  return rc & 0x80 ? rc & 0xbf : rc;
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** A password authorization (TPMS_AUTH_COMMAND with TPM_RS_PW) carrying `password` as the authValue. */
export function passwordAuth(password: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([u32(TPM_RS_PW), u16(0), Buffer.from([0]), u16(password.length), password]);
}

/**
 * TPM2_Certify(objectHandle, signHandle, qualifyingData, inScheme NULL) with
 * password authorizations: the object's authValue (e.g. a PIN) and the AIK's
 * (empty by default).
 */
export function certifyCommand(
  objectHandle: number,
  signHandle: number,
  qualifying: Buffer,
  objectAuth: Buffer = Buffer.alloc(0),
  signAuth: Buffer = Buffer.alloc(0),
): Buffer {
  if (qualifying.length > 64) throw new RangeError('qualifying data is at most 64 bytes');
  const auth = Buffer.concat([passwordAuth(objectAuth), passwordAuth(signAuth)]);
  const body = Buffer.concat([
    u32(objectHandle),
    u32(signHandle),
    u32(auth.length),
    auth,
    u16(qualifying.length),
    qualifying,
    u16(TPM_ALG_NULL), // inScheme: the AIK's own scheme
  ]);
  return Buffer.concat([u16(TPM_ST_SESSIONS), u32(10 + body.length), u32(TPM_CC_CERTIFY), body]);
}

export class TpmResponseError extends Error {
  constructor(
    readonly rc: number,
    what: string,
  ) {
    super(`${what} failed: TPM response code 0x${rc.toString(16)}`);
    this.name = 'TpmResponseError';
  }
}

export interface CertifyResult {
  /** TPMS_ATTEST (TPM2B_ATTEST without its size). */
  certInfo: Buffer;
  /** The AIK's signature over certInfo: DER for ECDSA, the raw signature for RSASSA. */
  sig: Buffer;
  /** COSE algorithm of sig: -7 (ES256) or -257 (RS256). */
  alg: -7 | -257;
}

/** Parses the response of TPM2_Certify; a non-zero response code throws TpmResponseError. */
export function parseCertifyResponse(rsp: Buffer): CertifyResult {
  if (rsp.length < 10) throw new Error('TPM2_Certify: truncated response');
  const rc = rsp.readUInt32BE(6);
  if (rc !== 0) throw new TpmResponseError(rc, 'TPM2_Certify');
  let at = 14; // header (10) + parameterSize (4)
  const need = (n: number) => {
    if (at + n > rsp.length) throw new Error('TPM2_Certify: truncated response');
  };
  const u16At = () => {
    need(2);
    const v = rsp.readUInt16BE(at);
    at += 2;
    return v;
  };
  const sized = () => {
    const n = u16At();
    need(n);
    const v = Buffer.from(rsp.subarray(at, at + n));
    at += n;
    return v;
  };
  const certInfo = sized();
  const sigAlg = u16At();
  const hash = u16At();
  if (hash !== 0x000b)
    throw new Error(`TPM2_Certify: the AIK signs with hash 0x${hash.toString(16)}, not SHA-256`);
  if (sigAlg === TPM_ALG_ECDSA) {
    const r = sized();
    const s = sized();
    return { certInfo, sig: ecdsaDer(r, s), alg: -7 };
  }
  if (sigAlg === TPM_ALG_RSASSA) return { certInfo, sig: sized(), alg: -257 };
  throw new Error(`TPM2_Certify: unsupported AIK signature scheme 0x${sigAlg.toString(16)}`);
}

/** An ECDSA-Sig-Value in minimal DER from the unsigned integers r and s. */
export function ecdsaDer(r: Buffer, s: Buffer): Buffer {
  const int = (v: Buffer) => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const body = v[i]! & 0x80 ? Buffer.concat([Buffer.from([0]), v.subarray(i)]) : v.subarray(i);
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const content = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from([0x30, content.length]), content]);
}

/** An ECDSA-Sig-Value (DER) as the r‖s of JWS (`size` bytes each: 32 for P-256). */
export function ecdsaDerToJose(der: Buffer, size = 32): Buffer {
  if (der[0] !== 0x30) throw new Error('not a DER ECDSA signature');
  let at = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  const int = () => {
    if (der[at] !== 0x02) throw new Error('not a DER ECDSA signature');
    const len = der[at + 1]!;
    let v = der.subarray(at + 2, at + 2 + len);
    at += 2 + len;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new Error('not a DER ECDSA signature of that size');
    return Buffer.concat([Buffer.alloc(size - v.length), v]);
  };
  return Buffer.concat([int(), int()]);
}
