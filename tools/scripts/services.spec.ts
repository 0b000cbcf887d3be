/** The launcher's per-profile environment (tools/scripts/services.cjs). */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  internalCallSignerConfigShape,
  internalCallVerifierConfigShape,
  kafkaConfigShape,
  loadConfig,
  parseInternalCallSigningKeys,
  parseInternalCallTrustedKeys,
} from '@latchkey/service-kit';

// A CommonJS script of the repository, loaded by path (as libs/testing does).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const launcher = require('./services.cjs') as {
  serviceEnv(service: string, profile?: string): NodeJS.ProcessEnv;
  INTERNAL_CALLS: Record<string, string[]>;
};

describe('the Kafka session timeout of each profile', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    delete process.env.KAFKA_SESSION_TIMEOUT_MS;
    process.env.KEY_ENCRYPTION_KEYS = `k:${Buffer.alloc(32).toString('base64')}`; // no key file
  });
  afterAll(() => {
    process.env = saved;
  });

  it('is 10 s for chaos (a killed consumer hands its partitions on sooner), within what the services accept', () => {
    for (const service of ['audit', 'provisioning']) {
      const env = launcher.serviceEnv(service, 'chaos');
      expect(env.KAFKA_SESSION_TIMEOUT_MS).toBe('10000');
      expect(loadConfig(kafkaConfigShape, env).KAFKA_SESSION_TIMEOUT_MS).toBe(10_000);
    }
  });

  it("is the services' default (30 s) for the other profiles", () => {
    for (const profile of ['dev', 'test', 'test-registration']) {
      const env = launcher.serviceEnv('audit', profile);
      expect(env.KAFKA_SESSION_TIMEOUT_MS).toBeUndefined();
      expect(loadConfig(kafkaConfigShape, env).KAFKA_SESSION_TIMEOUT_MS).toBe(30_000);
    }
  });
});

describe("the launcher's internal-call keys", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });
  const kek = (fill: number) => Buffer.alloc(32, fill).toString('base64');
  const envOf = (service: string) => launcher.serviceEnv(service, 'test');

  it("gives each caller only its own private key and each callee only its callers' public keys", () => {
    process.env.KEY_ENCRYPTION_KEYS = `a-rather-long-key-encryption-kid:${kek(3)},old:${kek(4)}`;
    // Whatever the calling shell holds is not passed on.
    process.env.INTERNAL_CALL_SIGNING_KEYS = 'inherited';
    process.env.INTERNAL_CALL_TRUSTED_KEYS = 'inherited';
    const signing = (s: string) =>
      parseInternalCallSigningKeys(
        loadConfig(internalCallSignerConfigShape, envOf(s)).INTERNAL_CALL_SIGNING_KEYS,
      );
    const trusted = (s: string) =>
      parseInternalCallTrustedKeys(
        loadConfig(internalCallVerifierConfigShape, envOf(s)).INTERNAL_CALL_TRUSTED_KEYS,
      );
    expect([...signing('auth').keys()]).toEqual(['a-rather-long-key-encryption-kid-ic']);
    expect([...trusted('registration').keys()]).toEqual(['auth', 'provisioning']);
    expect([...trusted('provisioning').keys()]).toEqual(['auth']);
    for (const callee of ['registration', 'provisioning'])
      expect(envOf(callee).INTERNAL_CALL_TRUSTED_KEYS).not.toContain('"d"');
    expect(envOf('registration').INTERNAL_CALL_SIGNING_KEYS).toBeUndefined();
    expect(envOf('audit').INTERNAL_CALL_SIGNING_KEYS).toBeUndefined();
    expect(envOf('audit').INTERNAL_CALL_TRUSTED_KEYS).toBeUndefined();
    expect(envOf('auth').INTERNAL_CALL_TRUSTED_KEYS).toBeUndefined();
    // Each caller's public key is the one its private key makes, and differs per service.
    const publicOf = (s: string) =>
      createPublicKey(signing(s).values().next().value!).export({ format: 'jwk' }).x;
    const registrationTrusts = trusted('registration');
    const x = (caller: string) =>
      registrationTrusts.get(caller)!.values().next().value!.export({ format: 'jwk' }).x;
    expect(x('auth')).toBe(publicOf('auth'));
    expect(x('provisioning')).toBe(publicOf('provisioning'));
    expect(publicOf('auth')).not.toBe(publicOf('provisioning'));
  });

  it("follows the chart's service-to-service calls (services.<name>.calls)", () => {
    const values = parseYaml(
      readFileSync(join(__dirname, '../../deploy/helm/latchkey/values.yaml'), 'utf8'),
    ) as { services: Record<string, { calls: string[] }> };
    const chartCalls = Object.fromEntries(
      Object.entries(values.services)
        .filter(([, s]) => s.calls.length)
        .map(([name, s]) => [name, [...s.calls].sort()]),
    );
    const launcherCalls = Object.fromEntries(
      Object.entries(launcher.INTERNAL_CALLS).map(([name, calls]) => [name, [...calls].sort()]),
    );
    expect(launcherCalls).toEqual(chartCalls);
  });

  it('derives the keys from the current key-encryption key: the same on every start, new with a new KEK', () => {
    process.env.KEY_ENCRYPTION_KEYS = `k1:${kek(3)}`;
    const first = envOf('auth').INTERNAL_CALL_SIGNING_KEYS;
    expect(envOf('auth').INTERNAL_CALL_SIGNING_KEYS).toBe(first);
    expect(first).not.toContain(kek(3));
    process.env.KEY_ENCRYPTION_KEYS = `k2:${kek(5)},k1:${kek(3)}`;
    expect(envOf('auth').INTERNAL_CALL_SIGNING_KEYS).not.toBe(first);
  });
});
