import { type TotpAlgorithm, totpCode, totpUri, verifyTotp } from './totp';

/** RFC 4648 base32 (the seeds of RFC 6238 are ASCII). */
function base32(text: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const b of Buffer.from(text, 'ascii')) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5)
    out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
}

// RFC 6238 Appendix B: seeds of 20, 32 and 64 bytes; 8 digits; 30 s steps.
const SEEDS: Record<TotpAlgorithm, string> = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
};
const VECTORS: [number, string, TotpAlgorithm][] = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1111111111, '67062674', 'SHA256'],
  [1111111111, '99943326', 'SHA512'],
  [1234567890, '89005924', 'SHA1'],
  [1234567890, '91819424', 'SHA256'],
  [1234567890, '93441116', 'SHA512'],
  [2000000000, '69279037', 'SHA1'],
  [2000000000, '90698825', 'SHA256'],
  [2000000000, '38618901', 'SHA512'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

describe('TOTP (RFC 6238)', () => {
  it.each(VECTORS)('at T=%i s the code is %s (%s)', (t, expected, algorithm) => {
    const params = { algorithm, digits: 8, periodSeconds: 30 };
    const secret = base32(SEEDS[algorithm]);
    expect(totpCode(secret, params, t * 1000)).toBe(expected);
    expect(verifyTotp(expected, secret, params, t * 1000)).toBe(Math.floor(t / 30));
  });

  it('accepts the previous and next step and nothing further', () => {
    const secret = base32(SEEDS.SHA1);
    const now = 1_700_000_000_000;
    const at = (steps: number) => totpCode(secret, undefined, now + steps * 30_000);
    const step = Math.floor(now / 30_000);
    expect(verifyTotp(at(-1), secret, undefined, now)).toBe(step - 1);
    expect(verifyTotp(at(1), secret, undefined, now)).toBe(step + 1);
    expect(verifyTotp(at(-2), secret, undefined, now)).toBeNull();
    expect(verifyTotp(at(2), secret, undefined, now)).toBeNull();
    expect(verifyTotp('12345', secret, undefined, now)).toBeNull();
  });

  it('makes an otpauth:// URI for authenticator apps', () => {
    expect(totpUri('JBSWY3DPEHPK3PXP', 'alice', 'latchkey acme')).toBe(
      'otpauth://totp/latchkey%20acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=latchkey+acme&algorithm=SHA1&digits=6&period=30',
    );
  });
});
