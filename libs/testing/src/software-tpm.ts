/** A software TPM (swtpm) driven with tpm2-tools, for the device-key and user-key attestation tests (see STACK-NOTES). */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ecdsaCsr, sha256Digest, Tpm2Tools } from '@latchkey/tpm';
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

  /** The tpm2-tools driver of this TPM (shared with the device agent), working in the TPM's directory. */
  get tools(): Tpm2Tools {
    return new Tpm2Tools(this.tcti, this.dir);
  }

  /** Runs a tpm2-tools command in the TPM's directory, then flushes transient objects (no resource manager). */
  run(tool: string, ...args: string[]): string {
    return this.tools.run(tool, args);
  }

  file(name: string): Buffer {
    return this.tools.file(name);
  }

  /** A primary key, a restricted signing key (the AIK, "ak") and an unrestricted signing key (the device key, "key"). */
  createKeys(): void {
    const tools = this.tools;
    tools.createPrimary();
    tools.createKey('ak', 'aik');
    tools.createKey('key', 'sign');
  }

  /**
   * An AIK made persistent at `handle`, as a device's provisioning tooling leaves it
   * for the agent (`latchkey-agent register --tpm --aik-handle`); returns its SPKI (DER).
   */
  persistAik(handle = '0x81010002'): Buffer {
    const tools = this.tools;
    tools.createPrimary();
    tools.createKey('aik', 'aik');
    tools.persist('aik', handle);
    return tools.spki(handle);
  }

  /** TPMT_PUBLIC of a key. */
  pubArea(which: 'key' | 'ak'): Buffer {
    return this.tools.pubArea(which);
  }

  spki(which: 'key' | 'ak'): Buffer {
    return this.tools.spki(which);
  }

  /** ECDSA P-256/SHA-256 signature by the device key, DER. */
  sign(data: Buffer): Buffer {
    return this.tools.sign('key', data);
  }

  /** A PKCS#10 CSR signed inside the TPM by the device key. */
  csr(): string {
    return ecdsaCsr(this.spki('key'), (tbs) => this.sign(tbs));
  }

  /** TPM2_Certify of the device key by the AIK over `qualifying` data: certInfo and sig (DER). */
  certify(qualifying: Buffer): { certInfo: Buffer; sig: Buffer } {
    const { certInfo, sig } = this.tools.certify('key', 'ak', qualifying);
    return { certInfo, sig };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

export { sha256Digest };

// The AIK CA of the tests is the one the demo uses too (libs/tpm, built with the agent).
export { tpmRootAndAikCertificate } from '@latchkey/tpm';
