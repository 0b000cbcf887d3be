/**
 * From the validated KAFKA_* variables (libs/service-kit kafkaConfigShape) to
 * the TLS and SASL options of the Kafka client: the one mapping every service uses.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import { ConfigError, type KafkaConfig } from '@latchkey/service-kit';

export interface KafkaSecurityOptions {
  /** TLS to the brokers (false = plaintext). */
  ssl: ConnectionOptions | false;
  /** SASL authentication, when configured. */
  sasl?: SASLOptions;
}

type ReadFile = (path: string) => Buffer;

function readPem(variable: string, path: string, read: ReadFile): Buffer {
  try {
    return read(path);
  } catch (err) {
    throw new ConfigError([
      { variable, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}` },
    ]);
  }
}

export function kafkaSecurityOptions(
  config: Pick<
    KafkaConfig,
    | 'KAFKA_SSL'
    | 'KAFKA_SSL_CA_FILE'
    | 'KAFKA_SSL_CERT_FILE'
    | 'KAFKA_SSL_KEY_FILE'
    | 'KAFKA_SASL_MECHANISM'
    | 'KAFKA_SASL_USERNAME'
    | 'KAFKA_SASL_PASSWORD'
  >,
  read: ReadFile = (p) => readFileSync(p),
): KafkaSecurityOptions {
  let ssl: ConnectionOptions | false = false;
  if (config.KAFKA_SSL) {
    ssl = {};
    if (config.KAFKA_SSL_CA_FILE)
      ssl.ca = readPem('KAFKA_SSL_CA_FILE', config.KAFKA_SSL_CA_FILE, read);
    if (config.KAFKA_SSL_CERT_FILE)
      ssl.cert = readPem('KAFKA_SSL_CERT_FILE', config.KAFKA_SSL_CERT_FILE, read);
    if (config.KAFKA_SSL_KEY_FILE)
      ssl.key = readPem('KAFKA_SSL_KEY_FILE', config.KAFKA_SSL_KEY_FILE, read);
  }
  const mechanism = config.KAFKA_SASL_MECHANISM;
  if (!mechanism) return { ssl };
  const username = config.KAFKA_SASL_USERNAME;
  const password = config.KAFKA_SASL_PASSWORD;
  if (!username || !password)
    throw new ConfigError([
      {
        variable: username ? 'KAFKA_SASL_PASSWORD' : 'KAFKA_SASL_USERNAME',
        message: 'is required with KAFKA_SASL_MECHANISM',
      },
    ]);
  // One object literal per mechanism: kafkajs types each one separately.
  const sasl: SASLOptions =
    mechanism === 'plain'
      ? { mechanism, username, password }
      : mechanism === 'scram-sha-256'
        ? { mechanism, username, password }
        : { mechanism, username, password };
  return { ssl, sasl };
}

/** Session timeout and heartbeat of one consumer group, as kafkajs takes them. */
export interface GroupTimeouts {
  sessionTimeout: number;
  heartbeatInterval: number;
}

/**
 * A group's heartbeat interval from its session timeout: a tenth of it. kafkajs
 * heartbeats only between fetches and batches, so a tenth leaves room for several
 * slow ones before the broker gives up on the member (a third, Kafka's upper
 * bound, would not), and a member learns of a rebalance within a tenth of it.
 */
export function groupTimeouts(sessionTimeoutMs: number): GroupTimeouts {
  return { sessionTimeout: sessionTimeoutMs, heartbeatInterval: Math.round(sessionTimeoutMs / 10) };
}

/** The consumer-group timings of the event bus, from the validated KAFKA_* variables. */
export function kafkaGroupOptions(
  config: Pick<KafkaConfig, 'KAFKA_SESSION_TIMEOUT_MS' | 'KAFKA_LISTENER_SESSION_TIMEOUT_MS'>,
): { sessionTimeoutMs: number; listenerSessionTimeoutMs: number } {
  return {
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    listenerSessionTimeoutMs: config.KAFKA_LISTENER_SESSION_TIMEOUT_MS,
  };
}
