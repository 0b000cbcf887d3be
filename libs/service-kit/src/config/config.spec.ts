import pino from 'pino';
import { REDACTED_PATHS } from '../logging/logger';
import {
  baseConfigShape,
  ConfigError,
  databaseConfigShape,
  loadConfig,
  parseConfig,
  redactConfig,
  redisConfigShape,
} from './config';

const shape = { ...baseConfigShape, ...databaseConfigShape };
const valid = {
  HTTP_PORT: '8081',
  GRPC_PORT: '50051',
  KAFKA_BROKERS: '127.0.0.1:9092,kafka-1:9092',
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/latchkey_registration',
};

describe('loadConfig', () => {
  it('parses and coerces a valid environment, applying defaults', () => {
    const config = loadConfig(shape, valid);
    expect(config.HTTP_PORT).toBe(8081);
    expect(config.KAFKA_BROKERS).toEqual(['127.0.0.1:9092', 'kafka-1:9092']);
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.LOG_LEVEL).toBe('info');
  });

  it('names a missing required variable', () => {
    const { DATABASE_URL: _omitted, ...env } = valid;
    expect(() => loadConfig(shape, env)).toThrow(/DATABASE_URL: is required but not set/);
  });

  it('names every malformed variable at once', () => {
    try {
      loadConfig(shape, { ...valid, HTTP_PORT: 'eighty', KAFKA_BROKERS: 'no-port-here' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const variables = (err as ConfigError).problems.map((p) => p.variable).sort();
      expect(variables).toEqual(['HTTP_PORT', 'KAFKA_BROKERS']);
    }
  });

  it('limits slow and oversized requests by default, and refuses a headers timeout over the request timeout', () => {
    const config = loadConfig(shape, valid);
    expect(config.HTTP_HEADERS_TIMEOUT_MS).toBe(10_000);
    expect(config.HTTP_REQUEST_TIMEOUT_MS).toBe(20_000);
    expect(config.GRPC_MAX_RECEIVE_MESSAGE_BYTES).toBe(4 * 1024 * 1024);
    expect(() =>
      loadConfig(shape, {
        ...valid,
        HTTP_HEADERS_TIMEOUT_MS: '30000',
        HTTP_REQUEST_TIMEOUT_MS: '15000',
      }),
    ).toThrow(/HTTP_HEADERS_TIMEOUT_MS: must not be longer than HTTP_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig(shape, { ...valid, GRPC_MAX_RECEIVE_MESSAGE_BYTES: '1024' })).toThrow(
      /GRPC_MAX_RECEIVE_MESSAGE_BYTES/,
    );
  });

  it('rejects a database URL of another scheme', () => {
    expect(() =>
      loadConfig(shape, { ...valid, DATABASE_URL: 'mysql://root@localhost/db' }),
    ).toThrow(/DATABASE_URL: expected a postgresql:\/\/ URL/);
  });
});

describe('Kafka TLS and SASL variables', () => {
  const kafka = { ...valid, KAFKA_SSL: 'true' };

  it('reads TLS files and SASL credentials, with TLS and SASL off by default', () => {
    expect(loadConfig(shape, valid)).toMatchObject({ KAFKA_SSL: false });
    expect(loadConfig(shape, valid).KAFKA_SASL_MECHANISM).toBeUndefined();
    const config = loadConfig(shape, {
      ...kafka,
      KAFKA_SSL_CA_FILE: '/etc/latchkey/kafka/ca.crt',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'latchkey',
      KAFKA_SASL_PASSWORD: 's3cret',
    });
    expect(config).toMatchObject({
      KAFKA_SSL: true,
      KAFKA_SSL_CA_FILE: '/etc/latchkey/kafka/ca.crt',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'latchkey',
      KAFKA_SASL_PASSWORD: 's3cret',
    });
  });

  it.each([
    [{ KAFKA_SSL: 'yes' }, /KAFKA_SSL: expected true or false/],
    [
      { KAFKA_SASL_MECHANISM: 'gssapi' },
      /KAFKA_SASL_MECHANISM: expected plain, scram-sha-256 or scram-sha-512/,
    ],
    [
      { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' },
      /KAFKA_SASL_PASSWORD: is required with KAFKA_SASL_MECHANISM/,
    ],
    [{ KAFKA_SASL_PASSWORD: 'p' }, /KAFKA_SASL_PASSWORD: is set but KAFKA_SASL_MECHANISM is not/],
    [{ KAFKA_SSL_CA_FILE: '/ca.crt' }, /KAFKA_SSL_CA_FILE: is set but KAFKA_SSL is not true/],
    [
      { KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: '/tls.crt' },
      /KAFKA_SSL_KEY_FILE: is required with KAFKA_SSL_CERT_FILE/,
    ],
    [
      { KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: 'ca.crt' },
      /KAFKA_SSL_CA_FILE: expected an absolute path/,
    ],
  ])('refuses %j, naming the variable', (extra, message) => {
    expect(() => loadConfig(shape, { ...valid, ...extra })).toThrow(message);
  });

  it('never echoes a password in its error messages', () => {
    const problems = parseConfig(shape, {
      ...valid,
      KAFKA_SASL_PASSWORD: 'hunter2-secret',
      KAFKA_SSL: 'maybe',
    }).problems;
    expect(problems.length).toBeGreaterThan(0);
    expect(JSON.stringify(problems)).not.toContain('hunter2-secret');
  });
});

describe('Kafka consumer session timeouts', () => {
  it('default to 30 s for the consumer groups and 10 s for the listeners', () => {
    const config = loadConfig(shape, valid);
    expect(config.KAFKA_SESSION_TIMEOUT_MS).toBe(30_000);
    expect(config.KAFKA_LISTENER_SESSION_TIMEOUT_MS).toBe(10_000);
  });

  it('accept any whole number of milliseconds the brokers accept, bounds included', () => {
    expect(
      loadConfig(shape, {
        ...valid,
        KAFKA_SESSION_TIMEOUT_MS: '10000',
        KAFKA_LISTENER_SESSION_TIMEOUT_MS: '6000',
      }),
    ).toMatchObject({ KAFKA_SESSION_TIMEOUT_MS: 10_000, KAFKA_LISTENER_SESSION_TIMEOUT_MS: 6_000 });
    expect(
      loadConfig(shape, { ...valid, KAFKA_SESSION_TIMEOUT_MS: '1800000' }).KAFKA_SESSION_TIMEOUT_MS,
    ).toBe(1_800_000);
  });

  it.each([
    ['KAFKA_SESSION_TIMEOUT_MS', '5999', /KAFKA_SESSION_TIMEOUT_MS: must be at least 6000 ms/],
    ['KAFKA_SESSION_TIMEOUT_MS', '1800001', /KAFKA_SESSION_TIMEOUT_MS: must be at most 1800000 ms/],
    [
      'KAFKA_LISTENER_SESSION_TIMEOUT_MS',
      '1000',
      /KAFKA_LISTENER_SESSION_TIMEOUT_MS: must be at least 6000 ms/,
    ],
    [
      'KAFKA_SESSION_TIMEOUT_MS',
      '10s',
      /KAFKA_SESSION_TIMEOUT_MS: expected a number of milliseconds/,
    ],
    ['KAFKA_SESSION_TIMEOUT_MS', '10000.5', /KAFKA_SESSION_TIMEOUT_MS: expected a whole number/],
  ])('refuse %s=%s at start-up, naming the variable and the limit', (variable, value, message) => {
    expect(() => loadConfig(shape, { ...valid, [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig(shape, { ...valid, [variable]: value })).toThrow(message);
  });
});

describe('Redis modes', () => {
  const redisShape = { ...shape, ...redisConfigShape };
  const standalone = { ...valid, REDIS_URL: 'redis://127.0.0.1:6379/0' };
  const cluster = {
    ...valid,
    REDIS_MODE: 'cluster',
    REDIS_CLUSTER_NODES: 'redis-0:6379, redis-1:6379,redis-2:6379',
  };

  it('defaults to one server named by REDIS_URL', () => {
    expect(loadConfig(redisShape, standalone)).toMatchObject({
      REDIS_MODE: 'standalone',
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      REDIS_TLS: false,
    });
  });

  it('reads Sentinel and Cluster addresses as host:port lists', () => {
    expect(loadConfig(redisShape, cluster).REDIS_CLUSTER_NODES).toEqual([
      'redis-0:6379',
      'redis-1:6379',
      'redis-2:6379',
    ]);
    const sentinel = loadConfig(redisShape, {
      ...valid,
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: 's-0:26379,s-1:26379',
      REDIS_SENTINEL_MASTER_NAME: 'mymaster',
      REDIS_DATABASE: '2',
    });
    expect(sentinel).toMatchObject({
      REDIS_SENTINELS: ['s-0:26379', 's-1:26379'],
      REDIS_SENTINEL_MASTER_NAME: 'mymaster',
      REDIS_DATABASE: 2,
    });
  });

  it.each(
    (
      [
        [{ ...valid }, /REDIS_URL: is required with REDIS_MODE=standalone/],
        [
          { ...valid, REDIS_MODE: 'replicated' },
          /REDIS_MODE: expected standalone, sentinel or cluster/,
        ],
        [
          { ...valid, REDIS_MODE: 'cluster' },
          /REDIS_CLUSTER_NODES: is required with REDIS_MODE=cluster/,
        ],
        [
          { ...valid, REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's:26379' },
          /REDIS_SENTINEL_MASTER_NAME: is required with REDIS_MODE=sentinel/,
        ],
        [
          { ...cluster, REDIS_URL: 'redis://redis-0:6379' },
          /REDIS_URL: applies to REDIS_MODE=standalone only, but REDIS_MODE is cluster/,
        ],
        [
          { ...cluster, REDIS_DATABASE: '1' },
          /REDIS_DATABASE: applies to REDIS_MODE=sentinel only/,
        ],
        [{ ...cluster, REDIS_CLUSTER_NODES: 'redis-0' }, /REDIS_CLUSTER_NODES: expected host:port/],
        [
          { ...cluster, REDIS_TLS_CA_FILE: '/etc/ca.crt' },
          /REDIS_TLS_CA_FILE: is set but TLS is off/,
        ],
        [
          { ...cluster, REDIS_TLS: 'true', REDIS_TLS_KEY_FILE: '/etc/tls.key' },
          /REDIS_TLS_CERT_FILE: is required with REDIS_TLS_KEY_FILE/,
        ],
        [
          { ...cluster, REDIS_USERNAME: 'latchkey' },
          /REDIS_PASSWORD: is required with REDIS_USERNAME/,
        ],
        [{ ...valid, REDIS_URL: 'redis://r:6379/zero' }, /REDIS_URL: expected redis\[s\]/],
      ] as [Record<string, string>, RegExp][]
    ).map(([env, message]) => [message, env] as const),
  )('refuses it: %p', (message, env) => {
    expect(() => loadConfig(redisShape, env)).toThrow(message);
  });

  it('accepts TLS files with a rediss:// URL', () => {
    expect(
      loadConfig(redisShape, {
        ...valid,
        REDIS_URL: 'rediss://redis:6380',
        REDIS_TLS_CA_FILE: '/etc/latchkey/redis/ca.crt',
      }).REDIS_TLS_CA_FILE,
    ).toBe('/etc/latchkey/redis/ca.crt');
  });
});

describe('redactConfig', () => {
  const secrets = ['kafka-pw-1', 'redis-pw-2', 'sentinel-pw-3', 'db-pw-4', 'url-pw-5', 'kek-6'];
  const config = loadConfig(
    { ...shape, ...redisConfigShape, KEY_ENCRYPTION_KEYS: redisConfigShape.REDIS_USERNAME },
    {
      ...valid,
      DATABASE_URL: 'postgresql://latchkey:db-pw-4@db:5432/latchkey',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'latchkey',
      KAFKA_SASL_PASSWORD: 'kafka-pw-1',
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: 's-0:26379',
      REDIS_SENTINEL_MASTER_NAME: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 'sentinel-pw-3',
      REDIS_USERNAME: 'latchkey',
      REDIS_PASSWORD: 'redis-pw-2',
      KEY_ENCRYPTION_KEYS: 'kek-6',
    },
  );

  it('hides every password and key, and the password of a URL, and keeps the rest', () => {
    const redacted = redactConfig({ ...config, REDIS_URL: 'rediss://user:url-pw-5@redis:6380/1' });
    const text = JSON.stringify(redacted);
    for (const s of secrets) expect({ [s]: text.includes(s) }).toEqual({ [s]: false });
    expect(redacted).toMatchObject({
      KAFKA_SASL_PASSWORD: '[redacted]',
      REDIS_PASSWORD: '[redacted]',
      REDIS_SENTINEL_PASSWORD: '[redacted]',
      KEY_ENCRYPTION_KEYS: '[redacted]',
      DATABASE_URL: 'postgresql://latchkey:***@db:5432/latchkey',
      REDIS_URL: 'rediss://user:***@redis:6380/1',
      KAFKA_SASL_USERNAME: 'latchkey',
      REDIS_SENTINELS: ['s-0:26379'],
    });
  });

  it('keeps secrets out of a log line that carries the config', () => {
    const lines: string[] = [];
    const logger = pino(
      { redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
      { write: (l: string) => lines.push(l) },
    );
    logger.info({ config: redactConfig(config) }, 'configuration');
    // Client options logged by mistake are caught by the logger's own redaction.
    logger.info(
      { options: { sasl: { password: 'kafka-pw-1' } }, sentinelPassword: 'sentinel-pw-3' },
      'x',
    );
    expect(lines).toHaveLength(2);
    for (const s of secrets) expect({ [s]: lines.join('').includes(s) }).toEqual({ [s]: false });
  });
});
