/** Each built service refuses to start on bad configuration, naming the variable. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { launcher, REPO_ROOT, TEST_PROFILE } from '@latchkey/testing';

function startWith(service: string, change: Record<string, string | undefined>) {
  const env = launcher.serviceEnv(service, TEST_PROFILE, {});
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  // Ports nobody else uses, in case the service did start.
  env.HTTP_PORT = '18999';
  env.GRPC_PORT = '18998';
  return spawnSync(process.execPath, [join(REPO_ROOT, 'dist/apps', service, 'src/main.js')], {
    env,
    encoding: 'utf8',
    timeout: 20000,
  });
}

describe.each(['registration', 'provisioning', 'auth', 'audit'])(
  '%s with bad configuration',
  (service) => {
    it('exits non-zero naming a missing DATABASE_URL', () => {
      const r = startWith(service, { DATABASE_URL: undefined });
      expect(r.status).toBe(78);
      expect(r.stderr).toContain(
        `latchkey-${service}: invalid configuration: DATABASE_URL: is required but not set`,
      );
    });

    it('exits non-zero naming a malformed KAFKA_BROKERS', () => {
      const r = startWith(service, { KAFKA_BROKERS: 'kafka without port' });
      expect(r.status).toBe(78);
      expect(r.stderr).toMatch(/KAFKA_BROKERS: expected host:port/);
    });

    it('exits non-zero naming a Kafka session timeout the brokers would refuse', () => {
      const r = startWith(service, { KAFKA_SESSION_TIMEOUT_MS: '3000' });
      expect(r.status).toBe(78);
      expect(r.stderr).toContain('KAFKA_SESSION_TIMEOUT_MS: must be at least 6000 ms');
    });

    it('exits non-zero naming the missing password of Kafka SASL', () => {
      const r = startWith(service, {
        KAFKA_SASL_MECHANISM: 'scram-sha-512',
        KAFKA_SASL_USERNAME: 'latchkey',
      });
      expect(r.status).toBe(78);
      expect(r.stderr).toContain('KAFKA_SASL_PASSWORD: is required with KAFKA_SASL_MECHANISM');
    });
  },
);

describe.each(['auth', 'provisioning'])('%s with a bad Redis mode', (service) => {
  it('names the Cluster nodes that REDIS_MODE=cluster needs, and the URL it does not take', () => {
    const r = startWith(service, { REDIS_MODE: 'cluster' });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('REDIS_CLUSTER_NODES: is required with REDIS_MODE=cluster');
    expect(r.stderr).toContain('REDIS_URL: applies to REDIS_MODE=standalone only');
  });
});

describe('auth with bad configuration', () => {
  it('names a malformed REDIS_URL', () => {
    const r = startWith('auth', { REDIS_URL: 'http://127.0.0.1:6379' });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/REDIS_URL: expected a redis:\/\/ URL/);
  });
});
