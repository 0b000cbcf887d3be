import { kafkaConfigShape, loadConfig } from '@latchkey/service-kit';
import { kafkaSecurityOptions } from './kafka-client-config';

const config = (env: Record<string, string>) =>
  loadConfig(kafkaConfigShape, { KAFKA_BROKERS: 'kafka:9093', ...env });
const files = (path: string) => {
  if (path.startsWith('/missing')) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return Buffer.from(`pem of ${path}`);
};

describe('kafkaSecurityOptions (config -> kafkajs ssl and sasl)', () => {
  it('is plaintext without SASL by default', () => {
    expect(kafkaSecurityOptions(config({}), files)).toEqual({ ssl: false });
  });

  it('uses TLS with the system CAs, or the given CA and client certificate', () => {
    expect(kafkaSecurityOptions(config({ KAFKA_SSL: 'true' }), files)).toEqual({ ssl: {} });
    expect(
      kafkaSecurityOptions(
        config({
          KAFKA_SSL: 'true',
          KAFKA_SSL_CA_FILE: '/etc/latchkey/kafka/ca.crt',
          KAFKA_SSL_CERT_FILE: '/etc/latchkey/kafka-client/user.crt',
          KAFKA_SSL_KEY_FILE: '/etc/latchkey/kafka-client/user.key',
        }),
        files,
      ),
    ).toEqual({
      ssl: {
        ca: Buffer.from('pem of /etc/latchkey/kafka/ca.crt'),
        cert: Buffer.from('pem of /etc/latchkey/kafka-client/user.crt'),
        key: Buffer.from('pem of /etc/latchkey/kafka-client/user.key'),
      },
    });
  });

  it.each(['plain', 'scram-sha-256', 'scram-sha-512'] as const)(
    'authenticates with SASL %s',
    (mechanism) => {
      const options = kafkaSecurityOptions(
        config({
          KAFKA_SSL: 'true',
          KAFKA_SASL_MECHANISM: mechanism,
          KAFKA_SASL_USERNAME: 'latchkey',
          KAFKA_SASL_PASSWORD: 'pw',
        }),
        files,
      );
      expect(options).toEqual({
        ssl: {},
        sasl: { mechanism, username: 'latchkey', password: 'pw' },
      });
    },
  );

  it('refuses SASL without credentials, naming the variable', () => {
    expect(() =>
      kafkaSecurityOptions({
        ...config({}),
        KAFKA_SASL_MECHANISM: 'plain',
        KAFKA_SASL_USERNAME: 'latchkey',
      }),
    ).toThrow(/KAFKA_SASL_PASSWORD: is required with KAFKA_SASL_MECHANISM/);
  });

  it('names the variable of a PEM file it cannot read', () => {
    expect(() =>
      kafkaSecurityOptions(config({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: '/missing/ca' }), files),
    ).toThrow(/KAFKA_SSL_CA_FILE: cannot read \/missing\/ca: ENOENT/);
  });
});
