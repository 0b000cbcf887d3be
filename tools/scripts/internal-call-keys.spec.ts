/** tools/scripts/internal-call-keys.mjs: new internal-call key pairs, as the services read them. */
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import {
  InternalCallSigner,
  InternalCallVerifier,
  parseInternalCallSigningKeys,
  parseInternalCallTrustedKeys,
} from '@latchkey/service-kit';

const script = join(__dirname, 'internal-call-keys.mjs');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });

describe('internal-call-keys.mjs', () => {
  it('prints a private JWK Set the signer accepts and its public JWK the verifier accepts', async () => {
    const r = run('auth', '--kid', 'auth-test', '--json');
    expect(r.status).toBe(0);
    const { signingKeys, publicKey } = JSON.parse(r.stdout) as {
      signingKeys: { keys: Record<string, string>[] };
      publicKey: Record<string, string>;
    };
    expect(publicKey).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      kid: 'auth-test',
      alg: 'EdDSA',
      use: 'sig',
      x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    const keys = parseInternalCallSigningKeys(JSON.stringify(signingKeys));
    expect(createPublicKey(keys.get('auth-test')!).export({ format: 'jwk' }).x).toBe(publicKey.x);
    const trusted = JSON.stringify({ auth: { keys: [publicKey] } });
    expect(parseInternalCallTrustedKeys(trusted).get('auth')!.has('auth-test')).toBe(true);
    const token = await new InternalCallSigner(keys, 'auth').tokenFor('registration');
    await expect(
      new InternalCallVerifier(trusted, 'registration').verify(token, ['auth']),
    ).resolves.toBe('auth');
  });

  it('prints new keys each time, and .env lines for docker compose', () => {
    const a = run('provisioning', '--dotenv');
    const b = run('provisioning', '--dotenv');
    expect(a.status).toBe(0);
    const lines = a.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('=')[0])).toEqual([
      'PROVISIONING_INTERNAL_CALL_SIGNING_KEYS',
      'PROVISIONING_INTERNAL_CALL_PUBLIC_KEY',
    ]);
    const value = (line: string) => line.slice(line.indexOf("='") + 2, -1);
    expect(parseInternalCallSigningKeys(value(lines[0]!)).size).toBe(1);
    expect(value(lines[1]!)).not.toContain('"d"');
    expect(b.stdout).not.toBe(a.stdout);
  });

  it.each([[[]], [['Auth!']], [['auth', '--kid', 'bad kid']], [['auth', '--json', '--dotenv']]])(
    'refuses %j with a usage line',
    (args) => {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/usage: node tools\/scripts\/internal-call-keys\.mjs <service>/);
      expect(r.stdout).toBe('');
    },
  );
});
