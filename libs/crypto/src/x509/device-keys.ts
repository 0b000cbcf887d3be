/**
 * The key checks of a device registration or renewal — the CSR (parse, proof of
 * possession, key policy) and, for a registration, the transport key (parse, key
 * policy, thumbprint) — optionally on worker threads.
 *
 * They are most of a registration's CPU and all synchronous OpenSSL and ASN.1
 * work, so on the main thread they cap a service process at one core. With
 * `workers` > 0 they run on that many worker threads (jobs arriving in the same
 * turn of the event loop travel as one message) and the main thread keeps to
 * gRPC, HTTP, PostgreSQL and Kafka; results and refusals are the same either
 * way. A worker that dies fails its pending jobs (the caller gets an error, never
 * an unchecked key) and is replaced.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { verifyDeviceCsr, type VerifiedCsr } from './device-csr';
import { verifyTransportKey, type VerifiedTransportKey } from './key-policy';
import { X509Error, type X509ErrorCode } from './x509-error';

export interface DeviceKeysJob {
  csrPem: string;
  /** The transport public key (SPKI PEM or JWK JSON text); omitted for a renewal. */
  transportPublicKey?: string;
}

/** What verifyDeviceCsr returns, less the KeyObject (which stays where it was made). */
export type CheckedCsr = Omit<VerifiedCsr, 'publicKey'>;

export interface CheckedDeviceKeys {
  csr: CheckedCsr;
  transport?: VerifiedTransportKey;
}

/** A refused key, with the request field it came from. */
export class DeviceKeyError extends X509Error {
  constructor(
    readonly field: 'csrPem' | 'transportPublicKey',
    code: X509ErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export type DeviceKeysOutcome =
  | { ok: CheckedDeviceKeys }
  | { refused: { field: DeviceKeyError['field']; code: X509ErrorCode; message: string } }
  | { failed: string };

/** The checks themselves (inline, or inside a worker). */
export async function checkDeviceKeys(job: DeviceKeysJob): Promise<CheckedDeviceKeys> {
  let csr;
  try {
    csr = await verifyDeviceCsr(job.csrPem);
  } catch (err) {
    if (err instanceof X509Error) throw new DeviceKeyError('csrPem', err.code, err.message);
    throw err;
  }
  let transport: VerifiedTransportKey | undefined;
  if (job.transportPublicKey !== undefined) {
    try {
      transport = verifyTransportKey(job.transportPublicKey);
    } catch (err) {
      if (err instanceof X509Error)
        throw new DeviceKeyError('transportPublicKey', err.code, err.message);
      throw err;
    }
  }
  const { spki, keyKind, jwsAlgorithms, thumbprint } = csr;
  return { csr: { spki, keyKind, jwsAlgorithms, thumbprint }, ...(transport ? { transport } : {}) };
}

/** checkDeviceKeys as a structured-clonable outcome (what a worker sends back). */
export async function outcomeOf(job: DeviceKeysJob): Promise<DeviceKeysOutcome> {
  try {
    return { ok: await checkDeviceKeys(job) };
  } catch (err) {
    if (err instanceof DeviceKeyError)
      return { refused: { field: err.field, code: err.code, message: err.message } };
    return { failed: err instanceof Error ? err.message : String(err) };
  }
}

function settle(outcome: DeviceKeysOutcome): CheckedDeviceKeys {
  if ('ok' in outcome) {
    // A structured clone turns a Buffer into a plain Uint8Array.
    const { csr, transport } = outcome.ok;
    return {
      csr: { ...csr, spki: Buffer.from(csr.spki.buffer, csr.spki.byteOffset, csr.spki.byteLength) },
      ...(transport ? { transport } : {}),
    };
  }
  if ('refused' in outcome) {
    const { field, code, message } = outcome.refused;
    throw new DeviceKeyError(field, code, message);
  }
  throw new Error(`device key check failed: ${outcome.failed}`);
}

interface Pending {
  resolve: (outcomes: DeviceKeysOutcome[]) => void;
  reject: (err: Error) => void;
}

/** One worker thread and the batches it has not answered yet. */
class KeyWorker {
  private worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private queued: {
    job: DeviceKeysJob;
    done: (o: DeviceKeysOutcome) => void;
    fail: (e: Error) => void;
  }[] = [];
  private nextId = 0;
  private closed = false;

  constructor(private readonly file: string) {
    this.worker = this.spawn();
  }

  get load(): number {
    return this.pending.size + (this.queued.length ? 1 : 0);
  }

  private spawn(): Worker {
    // Sources under jest are TypeScript: jiti (a development dependency) loads them there.
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       if (workerData.file.endsWith('.ts')) require('jiti').createJiti(workerData.file)(workerData.file);
       else require(workerData.file);`,
      { eval: true, workerData: { file: this.file } },
    );
    worker.on('message', (msg: { id: number; outcomes: DeviceKeysOutcome[] }) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      p?.resolve(msg.outcomes);
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      this.failAll(new Error(`device key worker exited (${code})`));
      if (!this.closed) this.worker = this.spawn();
    });
    worker.unref();
    return worker;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  run(job: DeviceKeysJob): Promise<DeviceKeysOutcome> {
    return new Promise((done, fail) => {
      if (!this.queued.length) queueMicrotask(() => this.flush());
      this.queued.push({ job, done, fail });
    });
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    const id = this.nextId++;
    this.pending.set(id, {
      resolve: (outcomes) => batch.forEach((b, i) => b.done(outcomes[i]!)),
      reject: (err) => batch.forEach((b) => b.fail(err)),
    });
    this.worker.postMessage({ id, jobs: batch.map((b) => b.job) });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}

export class DeviceKeyChecker {
  private readonly workers: KeyWorker[];

  /** `workers` = 0: the checks run inline on the calling thread. */
  constructor(workers: number) {
    const file = join(__dirname, `device-keys.worker${__filename.endsWith('.ts') ? '.ts' : '.js'}`);
    this.workers = Array.from(
      { length: Math.max(0, Math.floor(workers)) },
      () => new KeyWorker(file),
    );
  }

  get threads(): number {
    return this.workers.length;
  }

  /** Throws DeviceKeyError (an X509Error with the field) for a refused CSR or key. */
  async check(job: DeviceKeysJob): Promise<CheckedDeviceKeys> {
    if (!this.workers.length) return checkDeviceKeys(job);
    let worker = this.workers[0]!;
    for (const w of this.workers) if (w.load < worker.load) worker = w;
    return settle(await worker.run(job));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
