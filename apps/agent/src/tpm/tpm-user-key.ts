/**
 * The user key inside a TPM 2.0 (tpm2-tools): an ECC P-256 signing key under
 * the owner hierarchy's primary key, with the PIN as its authorization value.
 * The TPM checks the PIN and its dictionary-attack protection counts the
 * wrong ones and locks out; only the TPM-wrapped blobs live in the keystore.
 * The PIN goes to tpm2-tools on stdin (`file:-`), never on a command line.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WrongPinError } from '../keystore/pin-sealed-key';
import { KeystoreError, type UserKeyRecord } from '../keystore/software-keystore';
import type { JwsSigner } from '../protocol/device-protocol';

const KEY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';

/** The TPM refused because its dictionary-attack protection is in lockout. */
export class TpmLockoutError extends Error {
  constructor() {
    super('the TPM is locked out after too many wrong PINs (its dictionary-attack protection)');
    this.name = 'TpmLockoutError';
  }
}

export interface TpmKeyBlobs {
  /** TPM2B_PUBLIC as tpm2_create writes it. */
  public: Buffer;
  /** TPM2B_PRIVATE, wrapped by the TPM's storage key: useless outside this TPM. */
  private: Buffer;
}

export class TpmUserKeys {
  /** @param tcti the TPM2TOOLS_TCTI of the TPM (e.g. "device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"). */
  constructor(readonly tcti: string) {}

  private session<T>(
    fn: (run: (tool: string, args: string[], input?: string) => string, dir: string) => T,
  ): T {
    const dir = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'latchkey-agent-tpm-'));
    const env = { ...process.env, TPM2TOOLS_TCTI: this.tcti };
    const run = (tool: string, args: string[], input?: string) => {
      try {
        const out = execFileSync(tool, args, {
          cwd: dir,
          env,
          encoding: 'utf8',
          input,
          stdio: 'pipe',
        });
        return out;
      } catch (err) {
        const stderr = String((err as { stderr?: unknown }).stderr ?? '');
        // TPM_RC_AUTH_FAIL (session 1): wrong PIN, the TPM's DA counter went up; TPM_RC_LOCKOUT.
        if (/\(0x0*98e\)/i.test(stderr)) throw new WrongPinError();
        if (/\(0x0*921\)/i.test(stderr)) throw new TpmLockoutError();
        throw new Error(
          `${tool} failed: ${stderr.split('\n').filter(Boolean).slice(-1)[0] ?? 'no output'}`,
        );
      } finally {
        // No resource manager with swtpm: free the transient objects after each command.
        try {
          execFileSync('tpm2_flushcontext', ['-t'], { cwd: dir, env, stdio: 'pipe' });
        } catch {
          // nothing loaded
        }
      }
    };
    try {
      run('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', 'primary.ctx']);
      return fn(run, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Creates a key whose authorization value is the PIN; returns its blobs and public key. */
  create(pin: string): { blobs: TpmKeyBlobs; publicKey: KeyObject } {
    return this.session((run, dir) => {
      run(
        'tpm2_create',
        [
          '-C',
          'primary.ctx',
          '-G',
          'ecc256:ecdsa-sha256:null',
          '-a',
          KEY_ATTRIBUTES,
          '-p',
          'file:-',
          '-u',
          'key.pub',
          '-r',
          'key.priv',
        ],
        pin,
      );
      run('tpm2_load', ['-C', 'primary.ctx', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key.ctx']);
      run('tpm2_readpublic', ['-c', 'key.ctx', '-f', 'der', '-o', 'key.spki']);
      return {
        blobs: {
          public: readFileSync(join(dir, 'key.pub')),
          private: readFileSync(join(dir, 'key.priv')),
        },
        publicKey: createPublicKey({
          key: readFileSync(join(dir, 'key.spki')),
          format: 'der',
          type: 'spki',
        }),
      };
    });
  }

  /** ES256 signature (JOSE r‖s) over `data`, authorized by the PIN. */
  sign(blobs: TpmKeyBlobs, pin: string, data: Buffer): Buffer {
    return this.session((run, dir) => {
      writeFileSync(join(dir, 'key.pub'), blobs.public);
      writeFileSync(join(dir, 'key.priv'), blobs.private);
      writeFileSync(join(dir, 'msg.bin'), data);
      run('tpm2_load', ['-C', 'primary.ctx', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key.ctx']);
      run(
        'tpm2_sign',
        [
          '-c',
          'key.ctx',
          '-p',
          'file:-',
          '-g',
          'sha256',
          '-f',
          'plain',
          '-o',
          'msg.sig',
          'msg.bin',
        ],
        pin,
      );
      return ecdsaDerToJose(readFileSync(join(dir, 'msg.sig')));
    });
  }
}

/** An ECDSA-Sig-Value (DER) as the 64-byte r‖s of JWS ES256. */
export function ecdsaDerToJose(der: Buffer): Buffer {
  if (der[0] !== 0x30) throw new Error('not a DER ECDSA signature');
  let at = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  const int = () => {
    if (der[at] !== 0x02) throw new Error('not a DER ECDSA signature');
    const len = der[at + 1]!;
    let v = der.subarray(at + 2, at + 2 + len);
    at += 2 + len;
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    return Buffer.concat([Buffer.alloc(32 - v.length), v]);
  };
  return Buffer.concat([int(), int()]);
}

/** The JWS signer of a TPM-resident user key: each signature is authorized by the PIN inside the TPM. */
export function tpmUserKeySigner(record: UserKeyRecord, pin: string): JwsSigner {
  if (!record.tpm) throw new KeystoreError('NO_USER_KEY', 'the user key is not in a TPM');
  const tpm = new TpmUserKeys(record.tpm.tcti);
  const blobs = {
    public: Buffer.from(record.tpm.public, 'base64url'),
    private: Buffer.from(record.tpm.private, 'base64url'),
  };
  return {
    alg: 'ES256',
    sign: async (input) => {
      try {
        return tpm.sign(blobs, pin, input);
      } catch (err) {
        if (err instanceof WrongPinError)
          throw new KeystoreError(
            'WRONG_PIN',
            'wrong PIN (counted by the TPM: its dictionary-attack protection locks out after too many)',
          );
        if (err instanceof TpmLockoutError) throw new KeystoreError('PIN_LOCKED', err.message);
        throw err;
      }
    },
  };
}
