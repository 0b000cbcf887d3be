import { PasswordHasher } from './password-hasher';

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher({ logN: 12, r: 8, p: 1 });

  it('stores the scrypt parameters in the hash and verifies the right password only', async () => {
    const stored = await hasher.hash('correct horse battery');
    expect(stored).toMatch(/^\$scrypt\$ln=12,r=8,p=1\$/);
    expect(stored).not.toContain('correct horse');
    await expect(hasher.verify('correct horse battery', stored)).resolves.toBe(true);
    await expect(hasher.verify('correct horse batterY', stored)).resolves.toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hasher.hash('same')).not.toBe(await hasher.hash('same'));
  });

  it('refuses a missing or malformed hash without throwing', async () => {
    await expect(hasher.verify('x', undefined)).resolves.toBe(false);
    await expect(hasher.verify('x', '$bcrypt$whatever')).resolves.toBe(false);
  });

  it('asks for a rehash when the cost was raised', async () => {
    const weak = await hasher.hash('pw');
    const stronger = new PasswordHasher({ logN: 13, r: 8, p: 1 });
    expect(stronger.needsRehash(weak)).toBe(true);
    expect(hasher.needsRehash(weak)).toBe(false);
    await expect(stronger.verify('pw', weak)).resolves.toBe(true);
  });
});
