/** Configuration of the provisioning service. */
import { baseConfigShape, databaseConfigShape, redisConfigShape } from '@latchkey/service-kit';
import type { z } from 'zod';

export const provisioningConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  ...redisConfigShape,
};

export type ProvisioningConfig = z.infer<z.ZodObject<typeof provisioningConfigShape>>;
