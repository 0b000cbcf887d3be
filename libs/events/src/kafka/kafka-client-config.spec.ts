import { kafkaConfigShape, loadConfig } from '@latchkey/service-kit';
import { groupTimeouts, kafkaGroupOptions, kafkaSecurityOptions } from './kafka-client-config';

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

describe('kafkaGroupOptions and groupTimeouts (config -> kafkajs consumer timings)', () => {
  it('passes the default session timeouts, which heartbeat as before (every 3 s and 1 s)', () => {
    const options = kafkaGroupOptions(config({}));
    expect(options).toEqual({ sessionTimeoutMs: 30_000, listenerSessionTimeoutMs: 10_000 });
    expect(groupTimeouts(options.sessionTimeoutMs)).toEqual({
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
    });
    expect(groupTimeouts(options.listenerSessionTimeoutMs)).toEqual({
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
  });

  it('passes configured timeouts, heartbeating every tenth of the session timeout', () => {
    const options = kafkaGroupOptions(
      config({ KAFKA_SESSION_TIMEOUT_MS: '10000', KAFKA_LISTENER_SESSION_TIMEOUT_MS: '6005' }),
    );
    expect(options).toEqual({ sessionTimeoutMs: 10_000, listenerSessionTimeoutMs: 6_005 });
    expect(groupTimeouts(options.listenerSessionTimeoutMs)).toEqual({
      sessionTimeout: 6_005,
      heartbeatInterval: 601,
    });
  });
});
