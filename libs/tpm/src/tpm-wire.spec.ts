import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { verifyDeviceCsr } from '@latchkey/crypto';
import { csrDer, ecdsaCsr } from './tpm-csr';
import {
  certifyCommand,
  ecdsaDer,
  ecdsaDerToJose,
  parseCertifyResponse,
  TPM_RC_AUTH_FAIL,
  tpmErrorCode,
  TpmResponseError,
} from './tpm-wire';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const sized = (b: Buffer) => Buffer.concat([u16(b.length), b]);

/** A TPM2_Certify response as a TPM sends it: header, parameterSize, certifyInfo, signature, sessions. */
function response(rc: number, certInfo: Buffer, signature: Buffer): Buffer {
  const params = Buffer.concat([sized(certInfo), signature]);
  const sessions = Buffer.from([0, 0, 0, 0, 0]); // one empty TPMS_AUTH_RESPONSE
  const body = rc === 0 ? Buffer.concat([Buffer.alloc(4), params, sessions]) : Buffer.alloc(0);
  if (rc === 0) body.writeUInt32BE(params.length, 0);
  const header = Buffer.alloc(10);
  header.writeUInt16BE(rc === 0 ? 0x8002 : 0x8001, 0);
  header.writeUInt32BE(10 + body.length, 2);
  header.writeUInt32BE(rc, 6);
  return Buffer.concat([header, body]);
}

describe('TPM wire formats', () => {
  it('builds TPM2_Certify with both handles, two password authorizations and the qualifying data', () => {
    const qualifying = Buffer.alloc(32, 7);
    const cmd = certifyCommand(0x81018000, 0x81010002, qualifying, Buffer.from('1234-pin'));
    expect(cmd.readUInt16BE(0)).toBe(0x8002); // TPM_ST_SESSIONS
    expect(cmd.readUInt32BE(2)).toBe(cmd.length);
    expect(cmd.readUInt32BE(6)).toBe(0x148); // TPM_CC_Certify
    expect(cmd.readUInt32BE(10)).toBe(0x81018000);
    expect(cmd.readUInt32BE(14)).toBe(0x81010002);
    const authSize = cmd.readUInt32BE(18);
    const auth = cmd.subarray(22, 22 + authSize);
    // TPM_RS_PW, empty nonce, attributes 0, hmac = the object's password; then the AIK's (empty).
    expect(auth.readUInt32BE(0)).toBe(0x40000009);
    expect(auth.readUInt16BE(7)).toBe(8);
    expect(auth.subarray(9, 17).toString()).toBe('1234-pin');
    expect(auth.readUInt32BE(17)).toBe(0x40000009);
    expect(authSize).toBe(17 + 9);
    const rest = cmd.subarray(22 + authSize);
    expect(rest.readUInt16BE(0)).toBe(32);
    expect(rest.subarray(2, 34)).toEqual(qualifying);
    expect(rest.readUInt16BE(34)).toBe(0x0010); // inScheme TPM_ALG_NULL
    expect(rest.length).toBe(36);
    expect(() => certifyCommand(1, 2, Buffer.alloc(65))).toThrow(RangeError);
  });

  it('reads certInfo and an ECDSA signature (as DER) from a TPM2_Certify response', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certInfo = Buffer.from('ff54434780170000', 'hex');
    const rs = sign('sha256', certInfo, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const signature = Buffer.concat([
      u16(0x0018),
      u16(0x000b),
      sized(rs.subarray(0, 32)),
      sized(rs.subarray(32)),
    ]);
    const out = parseCertifyResponse(response(0, certInfo, signature));
    expect(out.certInfo).toEqual(certInfo);
    expect(out.alg).toBe(-7);
    expect(verify('sha256', certInfo, { key: publicKey, dsaEncoding: 'der' }, out.sig)).toBe(true);
  });

  it('reads an RSASSA signature, and refuses error codes, other hashes and truncation', () => {
    const certInfo = Buffer.from('abcd', 'hex');
    const rsa = Buffer.alloc(256, 9);
    const ok = parseCertifyResponse(
      response(0, certInfo, Buffer.concat([u16(0x0014), u16(0x000b), sized(rsa)])),
    );
    expect(ok).toMatchObject({ alg: -257, sig: rsa });
    expect(() => parseCertifyResponse(response(0x98e, certInfo, Buffer.alloc(0)))).toThrow(
      TpmResponseError,
    );
    expect(() =>
      parseCertifyResponse(
        response(0, certInfo, Buffer.concat([u16(0x0014), u16(0x0004), sized(rsa)])),
      ),
    ).toThrow(/not SHA-256/);
    const full = response(0, certInfo, Buffer.concat([u16(0x0014), u16(0x000b), sized(rsa)]));
    expect(() => parseCertifyResponse(full.subarray(0, 30))).toThrow(/truncated/);
  });

  it('tells a wrong authorization (any session) and a lockout from the response code', () => {
    expect(tpmErrorCode(0x98e)).toBe(TPM_RC_AUTH_FAIL); // session 1
    expect(tpmErrorCode(0xa8e)).toBe(TPM_RC_AUTH_FAIL); // session 2
    expect(tpmErrorCode(0x921)).toBe(0x921); // TPM_RC_LOCKOUT is a warning: kept whole
  });

  it('converts ECDSA signatures between DER and JOSE r‖s both ways', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (let i = 0; i < 20; i++) {
      const data = Buffer.from(`message ${i}`);
      const der = sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
      const jose = ecdsaDerToJose(der);
      expect(jose).toHaveLength(64);
      expect(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(
        true,
      );
      expect(ecdsaDer(jose.subarray(0, 32), jose.subarray(32))).toEqual(der);
    }
    expect(() => ecdsaDerToJose(Buffer.from('0400', 'hex'))).toThrow(/not a DER/);
  });

  it("makes a CSR from a key's SPKI and a DER signer that registration's CSR check accepts", async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    const pem = ecdsaCsr(spki, (tbs) => sign('sha256', tbs, privateKey), 'LAPTOP-7');
    const verified = await verifyDeviceCsr(pem);
    expect(Buffer.from(verified.spki).equals(spki)).toBe(true);
    expect(csrDer(pem).toString('base64')).toBe(pem.replace(/-----[^-]+-----|\s/g, ''));
    // Signed by another key: refused.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await expect(
      verifyDeviceCsr(ecdsaCsr(spki, (tbs) => sign('sha256', tbs, other))),
    ).rejects.toThrow();
  });
});
