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
  },
);

describe('auth with bad configuration', () => {
  it('names a malformed REDIS_URL', () => {
    const r = startWith('auth', { REDIS_URL: 'http://127.0.0.1:6379' });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/REDIS_URL: expected a redis:\/\/ URL/);
  });
});
