/** Configuration read once from the environment and validated at boot. */
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

/** Variables every latchkey service reads. */
export const baseConfigShape = {
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  HTTP_PORT: port,
  GRPC_PORT: port,
  KAFKA_BROKERS: z
    .string()
    .min(1)
    .transform((s) => s.split(',').map((b) => b.trim()))
    .refine(
      (list) => list.every((b) => /^[^\s:]+:\d{1,5}$/.test(b)),
      'expected host:port[,host:port]',
    ),
  KAFKA_CLIENT_ID: z.string().min(1).optional(),
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

export const redisConfigShape = {
  REDIS_URL: z
    .string()
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), 'expected a redis:// URL'),
} as const;

/**
 * Parses `env` with `shape`. Every problem names its variable, so a bad
 * deployment fails at start with a message an operator can act on.
 */
export function loadConfig<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const result = z.object(shape).safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => ({
      variable: String(issue.path[0] ?? '(environment)'),
      message: issue.message === 'Required' ? 'is required but not set' : issue.message,
    })),
  );
}

export type BaseConfig = z.infer<z.ZodObject<typeof baseConfigShape>>;
