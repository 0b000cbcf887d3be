/** The launcher's per-profile environment (tools/scripts/services.cjs). */
import { internalCallConfigShape, kafkaConfigShape, loadConfig } from '@latchkey/service-kit';

// A CommonJS script of the repository, loaded by path (as libs/testing does).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const launcher = require('./services.cjs') as {
  serviceEnv(service: string, profile?: string): NodeJS.ProcessEnv;
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

describe("the launcher's INTERNAL_CALL_KEYS", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('derives one key, shared by every service, from the current key-encryption key', () => {
    delete process.env.INTERNAL_CALL_KEYS;
    const kek = Buffer.alloc(32, 3).toString('base64');
    process.env.KEY_ENCRYPTION_KEYS = `a-rather-long-key-encryption-kid:${kek},old:${Buffer.alloc(32, 4).toString('base64')}`;
    const values = ['auth', 'registration', 'provisioning'].map(
      (s) => launcher.serviceEnv(s, 'test').INTERNAL_CALL_KEYS,
    );
    expect(new Set(values).size).toBe(1);
    const keys = loadConfig(internalCallConfigShape, { INTERNAL_CALL_KEYS: values[0]! });
    const [kid, key] = keys.INTERNAL_CALL_KEYS.split(':') as [string, string];
    expect(kid).toBe('a-rather-long-key-encryption--ic'); // at most 32 characters
    expect(key).not.toBe(kek); // a key of its own, not the KEK
    process.env.KEY_ENCRYPTION_KEYS = `other:${Buffer.alloc(32, 5).toString('base64')}`;
    expect(launcher.serviceEnv('auth', 'test').INTERNAL_CALL_KEYS).not.toBe(values[0]);
  });

  it('is whatever INTERNAL_CALL_KEYS the environment sets', () => {
    process.env.INTERNAL_CALL_KEYS = `mine:${Buffer.alloc(32, 6).toString('base64')}`;
    process.env.KEY_ENCRYPTION_KEYS = `k:${Buffer.alloc(32).toString('base64')}`;
    expect(launcher.serviceEnv('registration', 'test').INTERNAL_CALL_KEYS).toBe(
      process.env.INTERNAL_CALL_KEYS,
    );
  });
});
