/**
 * `npm run demo` against the real test stack (this profile's services): the
 * demo's own function (tools/scripts/demo.cjs) runs the whole journey with the
 * built agent — register → provision → login → refresh → admin revocation →
 * refused login → reset-pin → login — over each transport, and in TPM mode
 * (device, transport and user keys in a software TPM from libs/testing, with an
 * AIK the demo certifies with a local AIK CA the tenant trusts). Each step's
 * outcome, the audit trail's order and the chain verification are checked.
 */
import { join } from 'node:path';
import { REPO_ROOT, SoftwareTpm } from '@latchkey/testing';
import { portOffset } from './support';

interface DemoRecord {
  seq: number;
  record: {
    metadata: { event_code: string };
    message?: string;
    status_id?: number;
    user?: { uid?: string; credential_uid?: string };
    device?: { uid?: string };
  };
}
interface DemoResult {
  tenantId: string;
  deviceId: string;
  credentialIds: [string, string];
  alice: { userId: string };
  steps: { name: string; code: number; stdout: string; stderr: string }[];
  trail: DemoRecord[];
  verification: { code: number; ok: boolean; output: string };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runDemo } = require(join(REPO_ROOT, 'tools/scripts/demo.cjs')) as {
  runDemo(options: {
    portOffset: number;
    transport: 'grpc' | 'https';
    tpm?: { tcti: string };
    print: (line: string) => void;
  }): Promise<DemoResult>;
};

const SIGNED_IN = 'dev.latchkey.auth.sign_in.succeeded.v1';
const SIGN_IN_FAILED = 'dev.latchkey.auth.sign_in.failed.v1';
const REFRESHED = 'dev.latchkey.auth.token.refreshed.v1';
const PROVISIONED = 'dev.latchkey.credential.provisioned.v1';
const REVOKED = 'dev.latchkey.credential.revoked.v1';

/** Runs the demo and checks what every run must show, whatever the transport or key storage. */
async function demoJourney(transport: 'grpc' | 'https', tpm?: SoftwareTpm) {
  const lines: string[] = [];
  const r = await runDemo({
    portOffset: portOffset(),
    transport,
    ...(tpm ? { tpm: { tcti: tpm.tcti } } : {}),
    print: (line) => lines.push(line),
  });
  const [firstKey, secondKey] = r.credentialIds;
  expect(firstKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(secondKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(secondKey).not.toBe(firstKey);

  // Every step, in order, with its outcome.
  expect(r.steps.map((s) => [s.name, s.code])).toEqual([
    ['register', 0],
    ['provision', 0],
    ['login', 0],
    ['refresh', 0],
    ['revoke', 0],
    ['login-refused', 1],
    ['reset-pin', 0],
    ['login-again', 0],
  ]);
  const step = (name: string) => r.steps.find((s) => s.name === name)!;
  expect(step('register').stdout).toContain(`registered device ${r.deviceId}`);
  expect(step('register').stdout).toContain(
    `attestation ATTESTATION_LEVEL_${tpm ? 'TPM' : 'SOFTWARE'}`,
  );
  expect(step('provision').stdout).toContain(
    tpm ? `${firstKey} (ES256, in the TPM)` : `${firstKey} (ES256, software keystore)`,
  );
  expect(step('login').stdout).toContain(`credential ${firstKey}`);
  // The access token's amr: a hardware (TPM) or software key.
  expect(step('login').stdout).toContain(tpm ? '"hwk"' : '"swk"');
  expect(step('refresh').stdout).toMatch(/^refreshed session /);
  expect(step('login-refused').stderr).toMatch(
    /sign-in refused: the key may be revoked, the device disabled or deleted/,
  );
  expect(step('reset-pin').stdout).toContain(`PIN reset: new user key ${secondKey}`);
  expect(step('login-again').stdout).toContain(`credential ${secondKey}`);

  // The audit trail: gapless chain order; each source's events in the order they happened
  // (events of different services may interleave in the chain as Kafka delivers them).
  const trail = r.trail;
  expect(trail.map((x) => x.seq)).toEqual(trail.map((_x, i) => i + 1));
  const codes = trail.map((x) => x.record.metadata.event_code);
  // auth's first event of the tenant is its creation (registration's device event may be
  // delivered to audit before it: another topic).
  expect(codes.find((c) => c.startsWith('dev.latchkey.auth.'))).toBe(
    'dev.latchkey.auth.tenant.created.v1',
  );
  const ofDevice = (x: DemoRecord) => x.record.device?.uid === r.deviceId;
  const auth = trail.filter(
    (x) =>
      [SIGNED_IN, SIGN_IN_FAILED, REFRESHED].includes(x.record.metadata.event_code) && ofDevice(x),
  );
  expect(auth.map((x) => [x.record.metadata.event_code, x.record.status_id])).toEqual([
    [SIGNED_IN, 1],
    [REFRESHED, 1],
    [SIGN_IN_FAILED, 2],
    [SIGNED_IN, 1],
  ]);
  expect(auth.every((x) => x.record.user?.uid === r.alice.userId)).toBe(true);
  expect(auth[0]!.record.user?.credential_uid).toBe(firstKey);
  expect(auth[3]!.record.user?.credential_uid).toBe(secondKey);
  const keys = trail.filter((x) => [PROVISIONED, REVOKED].includes(x.record.metadata.event_code));
  expect(keys.map((x) => [x.record.metadata.event_code, x.record.message])).toEqual([
    [PROVISIONED, expect.stringContaining(firstKey)],
    [REVOKED, expect.stringContaining(firstKey)],
    [PROVISIONED, expect.stringContaining(secondKey)],
  ]);
  expect(codes.indexOf('dev.latchkey.device.registered.v1')).toBeGreaterThan(0);
  expect(codes.indexOf('dev.latchkey.device.registered.v1')).toBeLessThan(
    codes.indexOf(PROVISIONED),
  );

  // The chain verifies, and the narration shows it.
  expect(r.verification.ok).toBe(true);
  expect(r.verification.output).toMatch(
    new RegExp(`^ok {6}${r.tenantId} {2}seq 1\\.\\.${trail.length} `, 'm'),
  );
  expect(r.verification.output).toMatch(/^VERIFIED$/m);
  const text = lines.join('\n');
  expect(text).toMatch(/Authentication\s+Logon\s+Failure\s+user=\S+\s+device=/);
  expect(text).toMatch(/^ {2}VERIFIED$/m);
  return r;
}

describe('npm run demo against the real stack', () => {
  it.each(['grpc', 'https'] as const)(
    'runs the journey over %s with the software keystore',
    async (transport) => {
      await demoJourney(transport);
    },
    300_000,
  );

  it('runs the journey in TPM mode against a software TPM (swtpm)', async () => {
    const tpm = await SoftwareTpm.start();
    try {
      await demoJourney('grpc', tpm);
    } finally {
      await tpm.stop();
    }
  }, 300_000);
});
