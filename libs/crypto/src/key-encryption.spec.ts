import { KeyEncryption, KeyEncryptionError, parseKeyEncryptionKeys } from './key-encryption';

describe('KeyEncryption', () => {
  const oldSpec = KeyEncryption.generateKeySpec('old');
  const newSpec = KeyEncryption.generateKeySpec('new');

  it('round-trips a secret and binds it to its context', () => {
    const kek = new KeyEncryption(oldSpec);
    const env = kek.encrypt('top secret', 'row-1');
    expect(env).not.toContain('top secret');
    expect(kek.decrypt(env, 'row-1').toString()).toBe('top secret');
    expect(() => kek.decrypt(env, 'row-2')).toThrow(KeyEncryptionError);
  });

  it('after rotation, writes with the new key and still decrypts with the old one', () => {
    const before = new KeyEncryption(oldSpec).encrypt('s', 'c');
    const rotated = new KeyEncryption(`${newSpec},${oldSpec}`);
    expect(rotated.decrypt(before, 'c').toString()).toBe('s');
    expect(KeyEncryption.keyIdOf(rotated.encrypt('s', 'c'))).toBe('new');
  });

  it('refuses a tampered ciphertext and an unknown key id', () => {
    const kek = new KeyEncryption(oldSpec);
    const env = kek.encrypt('s', 'c').split('.');
    env[3] = Buffer.from('x').toString('base64url');
    expect(() => kek.decrypt(env.join('.'), 'c')).toThrow(KeyEncryptionError);
    expect(() => new KeyEncryption(newSpec).decrypt(kek.encrypt('s', 'c'), 'c')).toThrow(
      /not configured/,
    );
  });

  it('rejects malformed key lists', () => {
    expect(() => parseKeyEncryptionKeys('')).toThrow();
    expect(() => parseKeyEncryptionKeys('a:AAAA')).toThrow(/32 bytes/);
    expect(() => parseKeyEncryptionKeys(`${oldSpec},${oldSpec}`)).toThrow(/twice/);
  });
});
