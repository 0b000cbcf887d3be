/** Configuration of the provisioning service. */
import {
  baseConfigShape,
  databaseConfigShape,
  redisConfigShape,
  tokenValidationConfigShape,
  internalCallSignerConfigShape,
  internalCallVerifierConfigShape,
} from '@latchkey/service-kit';
import { z } from 'zod';

export const provisioningConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  ...redisConfigShape,
  ...tokenValidationConfigShape,
  ...internalCallSignerConfigShape,
  ...internalCallVerifierConfigShape,
  /** registration's gRPC endpoint (host:port), for GetDevice. */
  REGISTRATION_GRPC_ADDRESS: z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port'),
  /** Deadline of each call to registration. */
  REGISTRATION_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(2_000),
  /** Lifetime of a provisioning challenge. */
  CHALLENGE_TTL_SECONDS: z.coerce.number().int().min(30).max(3_600).default(300),
  /** Consumer group for device and user events. */
  PROVISIONING_CONSUMER_GROUP: z.string().min(1).default('latchkey-provisioning'),
};

export type ProvisioningConfig = z.infer<z.ZodObject<typeof provisioningConfigShape>>;
