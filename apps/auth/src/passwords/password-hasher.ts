/**
 * Password hashing with scrypt (memory-hard, node:crypto, no native deps). The
 * stored string carries its parameters — `$scrypt$ln=16,r=8,p=1$<salt>$<hash>` —
 * so the cost can be raised later: `needsRehash` tells sign-in to re-hash.
 */
import { randomBytes, scrypt, type ScryptOptions, timingSafeEqual } from 'node:crypto';

const HASH_BYTES = 32;
const FORMAT =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export interface ScryptParams {
  logN: number;
  r: number;
  p: number;
}

function derive(password: string, salt: Buffer, { logN, r, p }: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, options, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export class PasswordHasher {
  private dummy?: Promise<string>;

  constructor(readonly params: ScryptParams = { logN: 16, r: 8, p: 1 }) {}

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await derive(password, salt, this.params);
    const { logN, r, p } = this.params;
    return `$scrypt$ln=${logN},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
  }

  /**
   * Constant-time check. With `stored` undefined (no such user, no password) it
   * still spends one hash, so every failure costs the same time.
   */
  async verify(password: string, stored: string | null | undefined): Promise<boolean> {
    const m = stored ? FORMAT.exec(stored) : null;
    if (!m) {
      const dummy = await (this.dummy ??= this.hash('latchkey-timing-equalizer'));
      if (stored !== dummy) await this.verify(password, dummy);
      return false;
    }
    const params = { logN: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
    const expected = Buffer.from(m[5]!, 'base64');
    const actual = await derive(password, Buffer.from(m[4]!, 'base64'), params);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /** True when `stored` was made with weaker parameters than the current ones. */
  needsRehash(stored: string): boolean {
    const m = FORMAT.exec(stored);
    if (!m) return true;
    return (
      Number(m[1]) < this.params.logN ||
      Number(m[2]) < this.params.r ||
      Number(m[3]) < this.params.p
    );
  }
}
