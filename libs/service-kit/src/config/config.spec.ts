import { baseConfigShape, ConfigError, databaseConfigShape, loadConfig } from './config';

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

  it('rejects a database URL of another scheme', () => {
    expect(() =>
      loadConfig(shape, { ...valid, DATABASE_URL: 'mysql://root@localhost/db' }),
    ).toThrow(/DATABASE_URL: expected a postgresql:\/\/ URL/);
  });
});
