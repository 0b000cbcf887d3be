/** The launcher's per-profile environment (tools/scripts/services.cjs). */
import { kafkaConfigShape, loadConfig } from '@latchkey/service-kit';

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
