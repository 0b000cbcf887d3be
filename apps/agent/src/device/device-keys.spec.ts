import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { deviceCsr, spkiThumbprint } from './device-keys';
import { verifyDeviceCsr } from '@latchkey/crypto';

describe('device keys', () => {
  it('gives the same thumbprint (credential id) for a private key and its public key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const expected = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('base64url');
    expect(spkiThumbprint(privateKey)).toBe(expected);
    expect(spkiThumbprint(publicKey)).toBe(expected);
  });

  it("makes a CSR that registration's CSR check accepts, for the device key", async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const verified = await verifyDeviceCsr(await deviceCsr(privateKey, 'LAPTOP, "42"'));
    expect(
      Buffer.from(verified.spki).equals(
        createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
      ),
    ).toBe(true);
  });
});
