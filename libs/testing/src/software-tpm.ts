/** A software TPM (swtpm) driven with tpm2-tools, for the device-key and user-key attestation tests (see STACK-NOTES). */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { freePort } from './extra-service';

export class SoftwareTpm {
  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    private readonly port: number,
  ) {}

  /**
   * Starts swtpm on free ports and waits until it answers. swtpm exits at once when its
   * control port (the data port + 1, which freePort did not check) is taken: then it is
   * started again on other ports.
   */
  static async start(): Promise<SoftwareTpm> {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-swtpm-'));
    for (let launch = 0; ; launch++) {
      const port = await freePort();
      const ctrl = port + 1; // the swtpm TCTI expects the control channel on the next port
      const child = spawn(
        'swtpm',
        [
          'socket',
          '--tpm2',
          '--server',
          `type=tcp,port=${port},bindaddr=127.0.0.1`,
          '--ctrl',
          `type=tcp,port=${ctrl},bindaddr=127.0.0.1`,
          '--flags',
          'not-need-init,startup-clear',
          '--tpmstate',
          `dir=${dir}`,
        ],
        { stdio: 'ignore' },
      );
      const tpm = new SoftwareTpm(child, dir, port);
      for (let i = 0; ; i++) {
        try {
          tpm.run('tpm2_getrandom', '8', '--hex');
          return tpm;
        } catch (err) {
          const exited = child.exitCode !== null || child.signalCode !== null;
          if (exited && launch < 4) break;
          if (i > 100) {
            child.kill();
            throw err;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }

  /** The TPM2TOOLS_TCTI that reaches this TPM (for tools and clients of its own, e.g. the device agent). */
  get tcti(): string {
    return `swtpm:host=127.0.0.1,port=${this.port}`;
  }

  /** Runs a tpm2-tools command in the TPM's directory, then flushes transient objects (no resource manager). */
  run(tool: string, ...args: string[]): string {
    const env = { ...process.env, TPM2TOOLS_TCTI: this.tcti };
    const out = execFileSync(tool, args, { cwd: this.dir, env, encoding: 'utf8', stdio: 'pipe' });
    execFileSync('tpm2_flushcontext', ['-t'], { cwd: this.dir, env, stdio: 'pipe' });
    return out;
  }

  file(name: string): Buffer {
    return readFileSync(join(this.dir, name));
  }

  /** A primary key, a restricted signing key (the AIK) and an unrestricted signing key (the device key). */
  createKeys(): void {
    this.run('tpm2_createprimary', '-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', 'primary.ctx');
    const attrs = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';
    this.run(
      'tpm2_create',
      '-C',
      'primary.ctx',
      '-G',
      'ecc256:ecdsa-sha256:null',
      '-a',
      `${attrs}|restricted`,
      '-u',
      'ak.pub',
      '-r',
      'ak.priv',
    );
    this.run('tpm2_load', '-C', 'primary.ctx', '-u', 'ak.pub', '-r', 'ak.priv', '-c', 'ak.ctx');
    this.run(
      'tpm2_create',
      '-C',
      'primary.ctx',
      '-G',
      'ecc256:ecdsa-sha256:null',
      '-a',
      attrs,
      '-u',
      'key.pub',
      '-r',
      'key.priv',
    );
    this.run('tpm2_load', '-C', 'primary.ctx', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key.ctx');
    this.run('tpm2_readpublic', '-c', 'ak.ctx', '-f', 'der', '-o', 'ak.spki');
    this.run('tpm2_readpublic', '-c', 'key.ctx', '-f', 'der', '-o', 'key.spki');
  }

  /** TPMT_PUBLIC of a key (tpm2_create writes TPM2B_PUBLIC: a 2-byte size first). */
  pubArea(which: 'key' | 'ak'): Buffer {
    return this.file(`${which}.pub`).subarray(2);
  }

  spki(which: 'key' | 'ak'): Buffer {
    return this.file(`${which}.spki`);
  }

  /** ECDSA P-256/SHA-256 signature by the device key, DER. */
  sign(data: Buffer): Buffer {
    writeFileSync(join(this.dir, 'msg.bin'), data);
    this.run(
      'tpm2_sign',
      '-c',
      'key.ctx',
      '-g',
      'sha256',
      '-f',
      'plain',
      '-o',
      'msg.sig',
      'msg.bin',
    );
    return this.file('msg.sig'); // tpm2-tools 5.4 writes ECDSA "plain" signatures as DER
  }

  /** A PKCS#10 CSR signed inside the TPM by the device key. */
  csr(): string {
    const info = new CertificationRequestInfo({
      subject: new Name([]),
      subjectPKInfo: AsnConvert.parse(this.spki('key'), SubjectPublicKeyInfo),
    });
    const tbs = Buffer.from(AsnConvert.serialize(info));
    const csr = new CertificationRequest({
      certificationRequestInfo: info,
      signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }),
      signature: new Uint8Array(this.sign(tbs)).buffer,
    });
    const der = Buffer.from(AsnConvert.serialize(csr));
    return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  }

  /**
   * TPM2_Certify of the device key by the AIK over `qualifying` data: certInfo and
   * sig (DER). tpm2-tools 5.4's tpm2_certify cannot pass qualifying data, so the
   * command is sent raw with tpm2_send (both objects authorized by empty passwords).
   */
  certify(qualifying: Buffer): { certInfo: Buffer; sig: Buffer } {
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${this.port}` };
    const tool = (...args: string[]) =>
      execFileSync(args[0]!, args.slice(1), {
        cwd: this.dir,
        env,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    tool('tpm2_flushcontext', '-t');
    tool('tpm2_readpublic', '-c', 'key.ctx');
    tool('tpm2_readpublic', '-c', 'ak.ctx');
    const [keyHandle, akHandle] = tool('tpm2_getcap', 'handles-transient')
      .split('\n')
      .map((l) => /0x[0-9a-f]+/i.exec(l)?.[0])
      .filter((h): h is string => !!h)
      .map((h) => parseInt(h, 16));
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n >>> 0);
      return b;
    };
    const password = Buffer.concat([u32(0x40000009), u16(0), Buffer.from([0]), u16(0)]);
    const auth = Buffer.concat([password, password]);
    const body = Buffer.concat([
      u32(keyHandle!),
      u32(akHandle!),
      u32(auth.length),
      auth,
      u16(qualifying.length),
      qualifying,
      u16(0x0010), // inScheme TPM_ALG_NULL: the AIK's own scheme
    ]);
    const command = Buffer.concat([u16(0x8002), u32(10 + body.length), u32(0x148), body]);
    writeFileSync(join(this.dir, 'certify.cmd'), command);
    tool('tpm2_send', '-o', 'certify.rsp', 'certify.cmd');
    tool('tpm2_flushcontext', '-t');
    const rsp = this.file('certify.rsp');
    const rc = rsp.readUInt32BE(6);
    if (rc !== 0) throw new Error(`TPM2_Certify failed: 0x${rc.toString(16)}`);
    let at = 14; // header (10) + parameterSize (4)
    const sized = () => {
      const n = rsp.readUInt16BE(at);
      const v = rsp.subarray(at + 2, at + 2 + n);
      at += 2 + n;
      return Buffer.from(v);
    };
    const certInfo = sized();
    at += 4; // sigAlg, hash
    const r = sized();
    const s = sized();
    return { certInfo, sig: ecdsaDer(r, s) };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

/** An ECDSA-Sig-Value in minimal DER from r and s. */
function ecdsaDer(r: Buffer, s: Buffer): Buffer {
  const int = (v: Buffer) => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    const body = v[i]! & 0x80 ? Buffer.concat([Buffer.from([0]), v.subarray(i)]) : v.subarray(i);
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const content = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from([0x30, content.length]), content]);
}

export const sha256Digest = (b: Buffer) => createHash('sha256').update(b).digest();
