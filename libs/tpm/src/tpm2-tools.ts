/**
 * A TPM 2.0 driven with tpm2-tools (5.4) through a TCTI: a real TPM
 * ("device:/dev/tpmrm0") or swtpm ("swtpm:host=…,port=…"). Keys live under the
 * owner hierarchy's ECC primary key (re-created from its template on each use:
 * the same TPM gives the same primary), so only their TPM-wrapped blobs leave
 * the TPM. Authorization values (PINs) go to the tools on stdin, never on a
 * command line or in a file. Used by the device agent's TPM mode and by the
 * tests' software TPM (libs/testing).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certifyCommand,
  type CertifyResult,
  parseCertifyResponse,
  TPM_RC_AUTH_FAIL,
  TPM_RC_BAD_AUTH,
  TPM_RC_LOCKOUT,
  tpmErrorCode,
  TpmResponseError,
} from './tpm-wire';

/** A wrong authorization value (PIN): the TPM's dictionary-attack counter went up. */
export class TpmAuthFailError extends Error {
  constructor() {
    super('the TPM refused the authorization value (wrong PIN)');
    this.name = 'TpmAuthFailError';
  }
}

/** The TPM refused because its dictionary-attack protection is in lockout. */
export class TpmLockoutError extends Error {
  constructor() {
    super('the TPM is locked out after too many wrong PINs (its dictionary-attack protection)');
    this.name = 'TpmLockoutError';
  }
}

export class TpmToolError extends Error {
  constructor(
    readonly tool: string,
    readonly rc: number | undefined,
    detail: string,
  ) {
    super(`${tool} failed: ${detail}`);
    this.name = 'TpmToolError';
  }
}

const OBJECT = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth';

/**
 * The kinds of key made here. `noda` keeps the device's own keys usable while
 * the dictionary-attack protection is in lockout after wrong PINs of a user key.
 */
export const KEY_KINDS = {
  /** An ECC P-256 ECDSA/SHA-256 signing key whose authorization value is a PIN (DA-protected). */
  'user-sign': { alg: 'ecc256:ecdsa-sha256:null', attributes: `${OBJECT}|sign` },
  /** An ECC P-256 signing key with an empty authorization (the device key). */
  sign: { alg: 'ecc256:ecdsa-sha256:null', attributes: `${OBJECT}|noda|sign` },
  /** An RSA 2048 decryption key (the transport key: RSA-OAEP-256 inside the TPM). */
  decrypt: { alg: 'rsa2048:null:null', attributes: `${OBJECT}|noda|decrypt` },
  /** A restricted ECC P-256 signing key: an attestation identity key (AIK). */
  aik: { alg: 'ecc256:ecdsa-sha256:null', attributes: `${OBJECT}|noda|restricted|sign` },
} as const;
export type KeyKind = keyof typeof KEY_KINDS;

/** A key's TPM2B_PUBLIC and TPM2B_PRIVATE as tpm2_create writes them. */
export interface TpmKeyBlobs {
  public: Buffer;
  /** Wrapped by the TPM's storage key: useless outside this TPM. */
  private: Buffer;
}

/** A persistent handle (e.g. "0x81010002") or the name of a key loaded in this session. */
export type KeyRef = string;
const isHandle = (ref: KeyRef) => /^0x81[0-9a-f]{6}$/i.test(ref);

const FIRST_SCRATCH_HANDLE = 0x81018000;

/** TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_NV_RATE, TPM_RC_TESTING: the command may be sent again. */
const RETRY_CODES = new Set([0x922, 0x908, 0x920, 0x90a]);

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class Tpm2Tools {
  /**
   * @param tcti the TPM2TOOLS_TCTI of the TPM
   * @param dir the working folder of the context and blob files (private to the caller)
   */
  constructor(
    readonly tcti: string,
    readonly dir: string,
  ) {}

  /** Runs `fn` with a fresh working folder and the owner primary key loaded as "primary". */
  static session<T>(tcti: string, fn: (tpm: Tpm2Tools) => T): T {
    const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'latchkey-tpm-'));
    try {
      const tpm = new Tpm2Tools(tcti, dir);
      tpm.createPrimary();
      return fn(tpm);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private get env() {
    return { ...process.env, TPM2TOOLS_TCTI: this.tcti };
  }

  /**
   * Runs a tpm2-tools command in the working folder (`input` on its stdin), then
   * flushes the transient objects it left (swtpm has no resource manager).
   */
  run(tool: string, args: string[], input?: string | Buffer): string {
    try {
      return execFileSync(tool, args, {
        cwd: this.dir,
        env: this.env,
        encoding: 'utf8',
        input,
        stdio: 'pipe',
      });
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      const m = /\(0x([0-9a-f]+)\)/i.exec(stderr);
      const rc = m ? parseInt(m[1]!, 16) : undefined;
      if (rc !== undefined) throwFor(rc);
      throw new TpmToolError(
        tool,
        rc,
        stderr.split('\n').filter(Boolean).slice(-1)[0] ?? (err as Error).message,
      );
    } finally {
      this.flush();
    }
  }

  private flush(): void {
    try {
      execFileSync('tpm2_flushcontext', ['-t'], { cwd: this.dir, env: this.env, stdio: 'pipe' });
    } catch {
      // nothing loaded, or a resource manager flushes by itself
    }
  }

  file(name: string): Buffer {
    return readFileSync(join(this.dir, name));
  }

  /**
   * The owner hierarchy's ECC primary key as "primary" (tpm2-tools' default
   * template plus `noda`: loading the device's keys under it must work while
   * the dictionary-attack protection is in lockout).
   */
  createPrimary(): void {
    this.run('tpm2_createprimary', [
      '-C',
      'o',
      '-g',
      'sha256',
      '-G',
      'ecc',
      '-a',
      `${OBJECT}|noda|restricted|decrypt`,
      '-c',
      'primary.ctx',
    ]);
  }

  /** Creates a key of `kind` under the primary (authorization value `auth`, if any) and loads it as `name`. */
  createKey(name: string, kind: KeyKind, auth?: string): TpmKeyBlobs {
    const { alg, attributes } = KEY_KINDS[kind];
    const args = ['-C', 'primary.ctx', '-G', alg, '-a', attributes];
    if (auth !== undefined) args.push('-p', 'file:-');
    this.run('tpm2_create', [...args, '-u', `${name}.pub`, '-r', `${name}.priv`], auth);
    this.loadFiles(name);
    return { public: this.file(`${name}.pub`), private: this.file(`${name}.priv`) };
  }

  /** Loads a key made earlier (its blobs) as `name`. */
  loadKey(name: string, blobs: TpmKeyBlobs): void {
    writeFileSync(join(this.dir, `${name}.pub`), blobs.public);
    writeFileSync(join(this.dir, `${name}.priv`), blobs.private);
    this.loadFiles(name);
  }

  private loadFiles(name: string): void {
    this.run('tpm2_load', [
      '-C',
      'primary.ctx',
      '-u',
      `${name}.pub`,
      '-r',
      `${name}.priv`,
      '-c',
      `${name}.ctx`,
    ]);
  }

  private ctx(ref: KeyRef): string {
    return isHandle(ref) ? ref : `${ref}.ctx`;
  }

  /** DER SubjectPublicKeyInfo of a key. */
  spki(ref: KeyRef): Buffer {
    const out = `${isHandle(ref) ? ref.slice(2) : ref}.spki`;
    this.run('tpm2_readpublic', ['-c', this.ctx(ref), '-f', 'der', '-o', out]);
    return this.file(out);
  }

  /** TPMT_PUBLIC of a key (tpm2_create's TPM2B_PUBLIC without its 2-byte size). */
  pubArea(ref: KeyRef): Buffer {
    if (!isHandle(ref)) return this.file(`${ref}.pub`).subarray(2);
    const out = `${ref.slice(2)}.pub`;
    this.run('tpm2_readpublic', ['-c', ref, '-o', out]);
    return this.file(out).subarray(2);
  }

  /** ECDSA P-256/SHA-256 signature (DER) over `data` by a signing key, authorized by `auth`. */
  sign(ref: KeyRef, data: Buffer, auth?: string): Buffer {
    writeFileSync(join(this.dir, 'msg.bin'), data);
    const args = ['-c', this.ctx(ref), '-g', 'sha256', '-f', 'plain', '-o', 'msg.sig', 'msg.bin'];
    if (auth !== undefined) args.unshift('-p', 'file:-');
    this.run('tpm2_sign', args, auth);
    return this.file('msg.sig'); // tpm2-tools 5.4 writes ECDSA "plain" signatures as DER
  }

  /** RSA-OAEP (SHA-256, no label) decryption inside the TPM. */
  rsaDecrypt(ref: KeyRef, ciphertext: Buffer): Buffer {
    writeFileSync(join(this.dir, 'cipher.bin'), ciphertext);
    this.run('tpm2_rsadecrypt', [
      '-c',
      this.ctx(ref),
      '-s',
      'oaep-sha256',
      '-o',
      'plain.bin',
      'cipher.bin',
    ]);
    const plain = this.file('plain.bin');
    rmSync(join(this.dir, 'plain.bin'));
    return plain;
  }

  /** Makes a loaded key persistent at `handle` (owner hierarchy, empty owner authorization). */
  persist(name: string, handle: string): void {
    this.run('tpm2_evictcontrol', ['-C', 'o', '-c', `${name}.ctx`, handle]);
  }

  /** Removes a persistent key. */
  evict(handle: string): void {
    this.run('tpm2_evictcontrol', ['-C', 'o', '-c', handle]);
  }

  persistentHandles(): number[] {
    return this.run('tpm2_getcap', ['handles-persistent'])
      .split('\n')
      .map((l) => /0x[0-9a-f]+/i.exec(l)?.[0])
      .filter((h): h is string => !!h)
      .map((h) => parseInt(h, 16));
  }

  /**
   * TPM2_Certify of `object` by the AIK `aik` over `qualifying` data (certInfo.extraData).
   * tpm2-tools 5.4's tpm2_certify cannot pass qualifying data, so the command is
   * sent raw (tpm2_send, on stdin: it may hold the object's PIN). Raw commands
   * take handles, and transient objects do not outlive a tool run under a
   * resource manager: a key of this session is made persistent for the call.
   */
  certify(object: KeyRef, aik: KeyRef, qualifying: Buffer, objectAuth?: string): CertifyResult {
    const scratch: string[] = [];
    const handleOf = (ref: KeyRef) => {
      if (isHandle(ref)) return parseInt(ref, 16);
      const taken = new Set(this.persistentHandles());
      let h = FIRST_SCRATCH_HANDLE;
      while (taken.has(h)) h++;
      const hex = `0x${h.toString(16)}`;
      this.persist(ref, hex);
      scratch.push(hex);
      return h;
    };
    try {
      const command = certifyCommand(
        handleOf(object),
        handleOf(aik),
        qualifying,
        Buffer.from(objectAuth ?? '', 'utf8'),
      );
      for (let attempt = 1; ; attempt++) {
        this.run('tpm2_send', ['-o', 'certify.rsp'], command);
        try {
          return parseCertifyResponse(this.file('certify.rsp'));
        } catch (err) {
          if (!(err instanceof TpmResponseError)) throw err;
          // tpm2_send, unlike the other tools, leaves retries to its caller.
          if (RETRY_CODES.has(err.rc) && attempt < 10) {
            sleep(attempt * 50);
            continue;
          }
          throwFor(err.rc);
          throw err;
        }
      }
    } finally {
      for (const h of scratch) this.evict(h);
    }
  }
}

function throwFor(rc: number): void {
  const code = tpmErrorCode(rc);
  if (code === TPM_RC_AUTH_FAIL || code === TPM_RC_BAD_AUTH) throw new TpmAuthFailError();
  if (code === TPM_RC_LOCKOUT) throw new TpmLockoutError();
}

export const sha256Digest = (b: Buffer | string) => createHash('sha256').update(b).digest();
