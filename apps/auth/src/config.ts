/** Configuration of the auth service. */
import { keyEncryptionConfigShape } from '@latchkey/crypto';
import {
  baseConfigShape,
  databaseConfigShape,
  redisConfigShape,
  internalCallSignerConfigShape,
} from '@latchkey/service-kit';
import { z } from 'zod';

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');

const seconds = (min: number, max: number, dflt: number) =>
  z.coerce.number().int().min(min).max(max).default(dflt);

export const authConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  ...redisConfigShape,
  ...keyEncryptionConfigShape,
  ...internalCallSignerConfigShape,
  /** Public base URL of auth: the `iss` of its tokens and the base of OIDC discovery. */
  AUTH_ISSUER: z
    .string()
    .url()
    .transform((u) => u.replace(/\/$/, '')),
  AUTH_AUDIENCE: z.string().min(1).default('latchkey'),
  NONCE_TTL_SECONDS: seconds(1, 3600, 300),
  MFA_TICKET_TTL_SECONDS: seconds(30, 900, 300),
  ACCESS_TOKEN_TTL_SECONDS: seconds(60, 86_400, 900),
  /** How long a key signs before the next one takes over. */
  SIGNING_KEY_ROTATION_SECONDS: seconds(5, 365 * 86_400, 30 * 86_400),
  /** How often each replica re-reads the key ring (and rotates when due). */
  SIGNING_KEY_CHECK_SECONDS: seconds(1, 3600, 60),
  /** scrypt cost: N = 2^this (r=8, p=1). 16 → 64 MiB per hash. */
  PASSWORD_SCRYPT_LOG_N: z.coerce.number().int().min(12).max(20).default(16),
  /** Password attempts per source address per minute (all tenants). */
  SIGN_IN_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(600),
  /** Key sign-in looks devices up in registration and user keys in provisioning (gRPC). */
  REGISTRATION_GRPC_ADDRESS: hostPort,
  PROVISIONING_GRPC_ADDRESS: hostPort,
  /** Deadline of each of those lookups. */
  LOOKUP_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(2_000),
  /** Longest a looked-up device or key is cached (events drop entries sooner). */
  LOOKUP_CACHE_TTL_SECONDS: seconds(1, 3600, 60),
  /** Lifetime of a PRT from its last use (sliding). */
  PRT_TTL_SECONDS: seconds(60, 90 * 86_400, 14 * 86_400),
  /** Longest a key session lives from its sign-in, however often it is refreshed. */
  PRT_MAX_AGE_SECONDS: seconds(60, 365 * 86_400, 90 * 86_400),
  /** `aud` of ID tokens issued to devices (the device client's id). */
  DEVICE_CLIENT_ID: z.string().min(1).max(128).default('latchkey-device'),
};

export type AuthConfig = z.infer<z.ZodObject<typeof authConfigShape>>;

export const AUTH_CONFIG = Symbol('AUTH_CONFIG');
