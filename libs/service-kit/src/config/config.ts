/** Configuration read once from the environment and validated at boot. */
import { isAbsolute } from 'node:path';
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(
      `invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`,
    );
    this.name = 'ConfigError';
  }
}

const port = z.coerce.number().int().min(1).max(65535);

export interface ConfigProblem {
  variable: string;
  message: string;
}

/**
 * Rules across several variables of one shape (e.g. "SASL needs a password"),
 * attached to one of its schemas so that every config spreading the shape gets
 * them: loadConfig runs the rules of the schemas it finds in the shape.
 */
type CrossCheck = (config: Record<string, unknown>) => ConfigProblem[];
const crossChecks = new WeakMap<z.ZodTypeAny, CrossCheck>();

function withCrossCheck<T extends z.ZodTypeAny>(schema: T, check: CrossCheck): T {
  crossChecks.set(schema, check);
  return schema;
}

/** "true" or "false" (nothing else: a typo must not silently mean false). */
const flag = (dflt: 'true' | 'false') =>
  z
    .enum(['true', 'false'], { message: 'expected true or false' })
    .default(dflt)
    .transform((v) => v === 'true');

const hostPortList = z
  .string()
  .min(1)
  .transform((s) => s.split(',').map((b) => b.trim()))
  .refine(
    (list) => list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)),
    'expected host:port[,host:port]',
  );

/** A PEM file mounted into the container (a Secret volume). */
const pemFile = z
  .string()
  .refine((p) => isAbsolute(p), 'expected an absolute path to a PEM file')
  .optional();

/** A credential: never logged (see redactConfig), never in a ConfigMap. */
const secret = z.string().min(1).optional();

/** Variable names that hold secrets, or URLs that may carry a password. */
export const SECRET_VARIABLE = /(PASSWORD|SECRET|TOKEN|_KEY|_KEYS)$/;
const URL_VARIABLE = /_URL$/;

/**
 * A copy of a loaded config that is safe to log: secret variables become
 * "[redacted]" and passwords inside URLs "***".
 */
export function redactConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (SECRET_VARIABLE.test(name)) out[name] = '[redacted]';
    else if (typeof value === 'string' && value.includes('-----BEGIN'))
      out[name] = `(PEM, ${value.length} characters)`;
    else if (URL_VARIABLE.test(name) && typeof value === 'string')
      out[name] = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:\s]*:)[^/@\s]*@/i, '$1***@');
    else out[name] = value;
  }
  return out;
}

const both = (c: Record<string, unknown>, a: string, b: string, why: string): ConfigProblem[] => {
  if (c[a] === undefined && c[b] !== undefined)
    return [{ variable: a, message: `is required with ${b} (${why})` }];
  if (c[b] === undefined && c[a] !== undefined)
    return [{ variable: b, message: `is required with ${a} (${why})` }];
  return [];
};

function kafkaProblems(c: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!c.KAFKA_SSL)
    for (const v of ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'])
      if (c[v] !== undefined)
        problems.push({ variable: v, message: 'is set but KAFKA_SSL is not true' });
  problems.push(
    ...both(c, 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE', 'a client certificate needs its key'),
  );
  const sasl = ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'];
  if (c.KAFKA_SASL_MECHANISM !== undefined) {
    for (const v of sasl)
      if (c[v] === undefined)
        problems.push({ variable: v, message: 'is required with KAFKA_SASL_MECHANISM' });
  } else {
    for (const v of sasl)
      if (c[v] !== undefined)
        problems.push({
          variable: v,
          message: 'is set but KAFKA_SASL_MECHANISM is not (plain, scram-sha-256 or scram-sha-512)',
        });
  }
  return problems;
}

function redisProblems(c: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const mode = c.REDIS_MODE as 'standalone' | 'sentinel' | 'cluster';
  const needs: Record<typeof mode, string[]> = {
    standalone: ['REDIS_URL'],
    sentinel: ['REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER_NAME'],
    cluster: ['REDIS_CLUSTER_NODES'],
  };
  const onlyIn: Record<string, typeof mode> = {
    REDIS_URL: 'standalone',
    REDIS_SENTINELS: 'sentinel',
    REDIS_SENTINEL_MASTER_NAME: 'sentinel',
    REDIS_SENTINEL_PASSWORD: 'sentinel',
    REDIS_DATABASE: 'sentinel',
    REDIS_CLUSTER_NODES: 'cluster',
  };
  for (const v of needs[mode])
    if (c[v] === undefined)
      problems.push({ variable: v, message: `is required with REDIS_MODE=${mode}` });
  for (const [v, m] of Object.entries(onlyIn))
    if (m !== mode && c[v] !== undefined)
      problems.push({
        variable: v,
        message: `applies to REDIS_MODE=${m} only, but REDIS_MODE is ${mode}${v === 'REDIS_DATABASE' ? ' (standalone: put the database in REDIS_URL, redis://host:6379/2; Redis Cluster has database 0 only)' : ''}`,
      });
  const tls = c.REDIS_TLS === true || /^rediss:/.test(String(c.REDIS_URL ?? ''));
  if (!tls)
    for (const v of [
      'REDIS_TLS_CA_FILE',
      'REDIS_TLS_CERT_FILE',
      'REDIS_TLS_KEY_FILE',
      'REDIS_TLS_SERVERNAME',
    ])
      if (c[v] !== undefined)
        problems.push({
          variable: v,
          message: 'is set but TLS is off (set REDIS_TLS=true, or use a rediss:// URL)',
        });
  problems.push(
    ...both(c, 'REDIS_TLS_CERT_FILE', 'REDIS_TLS_KEY_FILE', 'a client certificate needs its key'),
  );
  if (c.REDIS_USERNAME !== undefined && c.REDIS_PASSWORD === undefined)
    problems.push({ variable: 'REDIS_PASSWORD', message: 'is required with REDIS_USERNAME' });
  return problems;
}

const milliseconds = (min: number, max: number, dflt: number) =>
  z.coerce.number().int().min(min).max(max).default(dflt);

/**
 * The range of a consumer group's session timeout that Kafka brokers accept by
 * default (group.min.session.timeout.ms and group.max.session.timeout.ms, also
 * the settings of tools/stack's broker): outside it every JoinGroup fails with
 * INVALID_SESSION_TIMEOUT and the consumer never starts, so it is refused at start-up.
 */
const KAFKA_SESSION_TIMEOUT_RANGE_MS = { min: 6_000, max: 1_800_000 } as const;

const sessionTimeout = (dflt: number) =>
  z.coerce
    .number({ message: 'expected a number of milliseconds' })
    .int('expected a whole number of milliseconds')
    .min(
      KAFKA_SESSION_TIMEOUT_RANGE_MS.min,
      `must be at least ${KAFKA_SESSION_TIMEOUT_RANGE_MS.min} ms (the brokers' default group.min.session.timeout.ms)`,
    )
    .max(
      KAFKA_SESSION_TIMEOUT_RANGE_MS.max,
      `must be at most ${KAFKA_SESSION_TIMEOUT_RANGE_MS.max} ms (the brokers' default group.max.session.timeout.ms)`,
    )
    .default(dflt);

/**
 * How the services reach Kafka: bootstrap brokers, and optionally TLS (server
 * CA, client certificate for mutual TLS) and SASL (PLAIN or SCRAM).
 */
export const kafkaConfigShape = {
  KAFKA_BROKERS: hostPortList,
  KAFKA_CLIENT_ID: z.string().min(1).optional(),
  /** TLS to the brokers. */
  KAFKA_SSL: withCrossCheck(flag('false'), kafkaProblems),
  /** CA certificate(s) the brokers' certificates chain to (default: the system's CAs). */
  KAFKA_SSL_CA_FILE: pemFile,
  /** Client certificate and key for mutual TLS (e.g. a Strimzi KafkaUser with tls authentication). */
  KAFKA_SSL_CERT_FILE: pemFile,
  KAFKA_SSL_KEY_FILE: pemFile,
  /** SASL authentication; unset = none. */
  KAFKA_SASL_MECHANISM: z
    .enum(['plain', 'scram-sha-256', 'scram-sha-512'], {
      message: 'expected plain, scram-sha-256 or scram-sha-512',
    })
    .optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: secret,
  /**
   * Session timeout of the service's consumer group (audit, provisioning): how long
   * the broker waits for a silent member (a killed pod) before it hands that member's
   * partitions to the others. The consumer heartbeats every tenth of it.
   */
  KAFKA_SESSION_TIMEOUT_MS: sessionTimeout(30_000),
  /**
   * The same for each instance's own listener group (auth's cache invalidation):
   * after a rebalance the cache serves nothing until the listener is back.
   */
  KAFKA_LISTENER_SESSION_TIMEOUT_MS: sessionTimeout(10_000),
} as const;

function transportProblems(c: Record<string, unknown>): ConfigProblem[] {
  return Number(c.HTTP_HEADERS_TIMEOUT_MS) > Number(c.HTTP_REQUEST_TIMEOUT_MS)
    ? [
        {
          variable: 'HTTP_HEADERS_TIMEOUT_MS',
          message: 'must not be longer than HTTP_REQUEST_TIMEOUT_MS (the whole request)',
        },
      ]
    : [];
}

/**
 * Limits of the HTTP and gRPC servers against slow and oversized requests.
 * A client that has not sent a request's headers within HTTP_HEADERS_TIMEOUT_MS,
 * or the whole request within HTTP_REQUEST_TIMEOUT_MS, gets 408 and is
 * disconnected (checked every second). A gRPC request message over
 * GRPC_MAX_RECEIVE_MESSAGE_BYTES is refused with RESOURCE_EXHAUSTED before any
 * handler runs; the default (grpc-js's own) is over twice the largest ordinary
 * request (ImportUsers of 1,000 users, ASCII fields at their length limits: 1.8 MB).
 */
export const transportConfigShape = {
  HTTP_HEADERS_TIMEOUT_MS: withCrossCheck(milliseconds(1_000, 300_000, 10_000), transportProblems),
  HTTP_REQUEST_TIMEOUT_MS: milliseconds(1_000, 600_000, 20_000),
  GRPC_MAX_RECEIVE_MESSAGE_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(64 * 1024 * 1024)
    .default(4 * 1024 * 1024),
} as const;

/** Variables every latchkey service reads. */
export const baseConfigShape = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  HTTP_PORT: port,
  GRPC_PORT: port,
  ...transportConfigShape,
  ...kafkaConfigShape,
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
} as const;

export const databaseConfigShape = {
  DATABASE_URL: z
    .string()
    .url()
    .refine((u) => /^postgres(ql)?:\/\//.test(u), 'expected a postgresql:// URL'),
  DATABASE_POOL_MAX: z.coerce.number().int().positive().default(10),
} as const;

/**
 * How a service reaches Redis: one server (REDIS_URL), a Sentinel-managed
 * master, or a Redis Cluster; optionally with a password (ACL user) and TLS.
 */
export const redisConfigShape = {
  REDIS_MODE: withCrossCheck(
    z
      .enum(['standalone', 'sentinel', 'cluster'], {
        message: 'expected standalone, sentinel or cluster',
      })
      .default('standalone'),
    redisProblems,
  ),
  /** standalone: redis[s]://[user:password@]host:port[/db]. */
  REDIS_URL: z
    .string()
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), 'expected a redis:// URL')
    .refine(
      (u) => /^\/?\d*$/.test(new URL(u).pathname),
      'expected redis[s]://[user:password@]host:port[/database number]',
    )
    .optional(),
  /** sentinel: the Sentinels (host:port,...) and the master set they watch. */
  REDIS_SENTINELS: hostPortList.optional(),
  REDIS_SENTINEL_MASTER_NAME: z.string().min(1).optional(),
  /** sentinel: password of the Sentinels themselves, if they require one. */
  REDIS_SENTINEL_PASSWORD: secret,
  /** sentinel: the database number. */
  REDIS_DATABASE: z.coerce.number().int().min(0).optional(),
  /** cluster: seed nodes (host:port,...); the client discovers the rest. */
  REDIS_CLUSTER_NODES: hostPortList.optional(),
  /** ACL user and password (every mode; they take precedence over a URL's). */
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: secret,
  /** TLS to Redis (and to the Sentinels); a rediss:// URL turns it on too. */
  REDIS_TLS: flag('false'),
  /** CA certificate(s) of the servers (default: the system's CAs). */
  REDIS_TLS_CA_FILE: pemFile,
  /** Client certificate and key for mutual TLS. */
  REDIS_TLS_CERT_FILE: pemFile,
  REDIS_TLS_KEY_FILE: pemFile,
  /**
   * Name the servers' certificates are checked against, instead of each node's
   * address (Cluster nodes announce IP addresses; certificates name hosts).
   */
  REDIS_TLS_SERVERNAME: z.string().min(1).optional(),
} as const;

/**
 * Parses `env` with `shape`. Every problem names its variable, so a bad
 * deployment fails at start with a message an operator can act on.
 */
export function loadConfig<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const result = parseConfig(shape, env);
  if (result.problems.length) throw new ConfigError(result.problems);
  return result.config!;
}

/** loadConfig without the throw: the config, or every problem (each naming its variable). */
export function parseConfig<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv,
): { config?: z.infer<z.ZodObject<S>>; problems: ConfigProblem[] } {
  const result = z.object(shape).safeParse(env);
  if (!result.success)
    return {
      problems: result.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? '(environment)'),
        message: issue.message === 'Required' ? 'is required but not set' : issue.message,
      })),
    };
  const checks = new Set(
    Object.values(shape)
      .map((schema) => crossChecks.get(schema as z.ZodTypeAny))
      .filter((c): c is CrossCheck => c !== undefined),
  );
  const problems = [...checks].flatMap((check) => check(result.data as Record<string, unknown>));
  return problems.length ? { problems } : { config: result.data, problems };
}

export type BaseConfig = z.infer<z.ZodObject<typeof baseConfigShape>>;
export type KafkaConfig = z.infer<z.ZodObject<typeof kafkaConfigShape>>;
export type RedisConfig = z.infer<z.ZodObject<typeof redisConfigShape>>;
