import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { verifyDeviceCsr } from './device-csr';
import { DeviceKeyChecker, DeviceKeyError } from './device-keys';
import { verifyTransportKey } from './key-policy';
import { x509 } from './provider';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function csrPem(): Promise<string> {
  const keys = await webcrypto.subtle.generateKey(EC, false, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=device',
    keys,
    signingAlgorithm: EC,
  });
  return csr.toString('pem');
}

const transportPem = () =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(DeviceKeyError);
      const e = err as DeviceKeyError;
      return { field: e.field, code: e.code };
    },
  );

describe.each([
  ['inline', 0],
  ['on a worker thread', 1],
  ['on two worker threads', 2],
])('DeviceKeyChecker %s', (_name, workers) => {
  let checker: DeviceKeyChecker;
  beforeAll(() => {
    checker = new DeviceKeyChecker(workers);
  });
  afterAll(() => checker.close());

  it('returns what verifyDeviceCsr and verifyTransportKey return', async () => {
    const csr = await csrPem();
    const transport = transportPem();
    const got = await checker.check({ csrPem: csr, transportPublicKey: transport });
    const want = await verifyDeviceCsr(csr);
    expect(Buffer.isBuffer(got.csr.spki)).toBe(true);
    expect(got.csr.spki.equals(want.spki)).toBe(true);
    expect(got.csr).toMatchObject({
      keyKind: want.keyKind,
      thumbprint: want.thumbprint,
      jwsAlgorithms: [...want.jwsAlgorithms],
    });
    expect(got.transport).toEqual(verifyTransportKey(transport));
    // A renewal has no transport key.
    expect((await checker.check({ csrPem: csr })).transport).toBeUndefined();
  });

  it('refuses with the field and the code of the failed check', async () => {
    const csr = await csrPem();
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const ed25519 = generateKeyPairSync('ed25519')
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const tampered = csr.replace(/\n(.)(.)/, (_m, a: string, b: string) => `\n${b}${a}`);
    expect(await refusal(checker.check({ csrPem: 'not a csr' }))).toEqual({
      field: 'csrPem',
      code: 'MALFORMED_CSR',
    });
    expect(await refusal(checker.check({ csrPem: tampered }))).toEqual({
      field: 'csrPem',
      code: expect.stringMatching(/^(MALFORMED_CSR|CSR_SIGNATURE_INVALID)$/),
    });
    expect(
      await refusal(checker.check({ csrPem: csr, transportPublicKey: '{"kty":"EC"}' })),
    ).toEqual({ field: 'transportPublicKey', code: 'MALFORMED_PUBLIC_KEY' });
    expect(await refusal(checker.check({ csrPem: csr, transportPublicKey: rsa1024 }))).toEqual({
      field: 'transportPublicKey',
      code: 'KEY_NOT_ALLOWED',
    });
    expect(await refusal(checker.check({ csrPem: csr, transportPublicKey: ed25519 }))).toEqual({
      field: 'transportPublicKey',
      code: 'KEY_NOT_ALLOWED',
    });
  });

  it('answers many concurrent checks, each with its own keys', async () => {
    const jobs = await Promise.all(
      Array.from({ length: 40 }, async (_, i) =>
        i % 5 === 4
          ? { csrPem: 'garbage', transportPublicKey: transportPem() }
          : { csrPem: await csrPem(), transportPublicKey: transportPem() },
      ),
    );
    const results = await Promise.allSettled(jobs.map((j) => checker.check(j)));
    for (const [i, r] of results.entries()) {
      if (i % 5 === 4) {
        expect(r.status).toBe('rejected');
        continue;
      }
      expect(r.status).toBe('fulfilled');
      const { csr, transport } = (
        r as PromiseFulfilledResult<Awaited<ReturnType<DeviceKeyChecker['check']>>>
      ).value;
      expect(csr.thumbprint).toBe((await verifyDeviceCsr(jobs[i]!.csrPem)).thumbprint);
      expect(transport).toEqual(verifyTransportKey(jobs[i]!.transportPublicKey));
    }
  });
});

describe('DeviceKeyChecker when its worker dies', () => {
  it('fails the pending checks (never an unchecked key) and recovers with a new worker', async () => {
    const checker = new DeviceKeyChecker(1);
    try {
      const csr = await csrPem();
      await checker.check({ csrPem: csr });
      // White-box: end the thread under a pending check, as a crash would.
      const worker = (
        checker as unknown as { workers: { worker: { terminate(): Promise<number> } }[] }
      ).workers[0]!.worker;
      const pending = checker.check({ csrPem: csr });
      await worker.terminate();
      await expect(pending).rejects.toThrow(/worker exited/);
      const again = await checker.check({ csrPem: csr });
      expect(again.csr.thumbprint).toBe((await verifyDeviceCsr(csr)).thumbprint);
    } finally {
      await checker.close();
    }
  });
});
