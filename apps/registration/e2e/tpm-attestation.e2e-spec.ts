/**
 * A device key made inside a software TPM (swtpm + tpm2-tools), certified by
 * an AIK whose certificate chains to the tenant's TPM root, registers with
 * attestation level TPM; a tampered certInfo or a pubArea that is not the
 * CSR's key is refused and stores nothing.
 */
import { status } from '@grpc/grpc-js';
import {
  closeBus,
  failure,
  joinToken,
  newTenant,
  registration,
  type RegistrationUnderTest,
  softwareDevice,
  startRegistration,
} from './support';
import { sha256Digest as sha256, SoftwareTpm, tpmRootAndAikCertificate } from '@latchkey/testing';

const csrDer = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');

describe('TPM attestation of the device key', () => {
  let reg: RegistrationUnderTest;
  let tpm: SoftwareTpm;
  let tenant: string;
  let aikDer: Buffer;
  let csrPem: string;
  let certified: { certInfo: Buffer; sig: Buffer };

  beforeAll(async () => {
    tpm = await SoftwareTpm.start();
    tpm.createKeys();
    reg = await startRegistration('tpm-e2e');
    tenant = await newTenant(reg);
    // The tenant's TPM root (standing in for a TPM vendor CA) and the AIK certificate it issues.
    const { rootPem, aikDer: aik } = await tpmRootAndAikCertificate(tpm.spki('ak'));
    aikDer = aik;
    await reg.client.updateDevicePolicy!(
      {
        policy: {
          tenantId: tenant,
          requireTpm: true,
          certificateValidityDays: 365,
          tpmRootCertificatesPem: [rootPem],
        },
      },
      await reg.as(tenant),
    );
    csrPem = tpm.csr();
    certified = tpm.certify(sha256(csrDer(csrPem)));
  }, 120_000);

  afterAll(async () => {
    await closeBus();
    await reg?.close();
    await tpm?.stop();
  });

  const statement = (over: Partial<{ certInfo: Buffer; pubArea: Buffer; sig: Buffer }> = {}) => ({
    x5c: [aikDer],
    certInfo: over.certInfo ?? certified.certInfo,
    pubArea: over.pubArea ?? tpm.pubArea('key'),
    sig: over.sig ?? certified.sig,
    alg: -7,
  });

  async function attempt(csr: string, tpmAttestation: object) {
    const { token } = await joinToken(reg, tenant);
    const { transportPublicKey } = await softwareDevice();
    return reg.client.registerDevice!(
      registration(tenant, token, { csrPem: csr, transportPublicKey }, { tpmAttestation }),
    );
  }

  it('registers a TPM-resident key with attestation level TPM', async () => {
    const res = await attempt(csrPem, statement());
    expect(res.device).toMatchObject({
      attestationLevel: 'ATTESTATION_LEVEL_TPM',
      status: 'DEVICE_STATUS_ACTIVE',
    });
    const events = await reg.db.query(
      `SELECT data FROM outbox_events WHERE type = 'dev.latchkey.device.registered.v1' AND tenant_id = $1`,
      [tenant],
    );
    expect(
      events.rows.map((r: { data: { attestationLevel: string } }) => r.data.attestationLevel),
    ).toEqual(['tpm']);
  });

  it('refuses a tampered certInfo', async () => {
    const certInfo = Buffer.from(certified.certInfo);
    certInfo[certInfo.length - 1] ^= 0x01;
    const err = await failure(attempt(csrPem, statement({ certInfo })));
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'ATTESTATION_INVALID' });
  });

  it("refuses a pubArea that is not the CSR's key", async () => {
    const err = await failure(attempt(csrPem, statement({ pubArea: tpm.pubArea('ak') })));
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'ATTESTATION_INVALID' });
    expect(err.message).toMatch(/pubArea/);
  });

  it('refuses a statement bound to another request (extraData) and a software key presented with it', async () => {
    const other = tpm.certify(sha256(Buffer.from('another request')));
    expect(
      await failure(attempt(csrPem, statement({ certInfo: other.certInfo, sig: other.sig }))),
    ).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'ATTESTATION_INVALID' });
    const software = await softwareDevice();
    expect(await failure(attempt(software.csrPem, statement()))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      reason: 'ATTESTATION_INVALID',
    });
  });

  it('stores no device for the refused attempts', async () => {
    const n = await reg.db.query('SELECT count(*) AS n FROM devices WHERE tenant_id = $1', [
      tenant,
    ]);
    expect(Number(n.rows[0].n)).toBe(1);
    const reasons = await reg.db.query(
      `SELECT data->>'reason' AS reason FROM outbox_events WHERE type = 'dev.latchkey.device.registration_failed.v1' AND tenant_id = $1`,
      [tenant],
    );
    expect(reasons.rows.map((r: { reason: string }) => r.reason)).toEqual(
      Array(4).fill('attestation_invalid'),
    );
  });
});
