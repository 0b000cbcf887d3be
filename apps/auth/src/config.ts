/** Configuration of the auth service. */
import { baseConfigShape, databaseConfigShape, redisConfigShape } from '@latchkey/service-kit';
import { z } from 'zod';

export const authConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  ...redisConfigShape,
  NONCE_TTL_SECONDS: z.coerce.number().int().min(10).max(3600).default(300),
};

export type AuthConfig = z.infer<z.ZodObject<typeof authConfigShape>>;

export const AUTH_CONFIG = Symbol('AUTH_CONFIG');
