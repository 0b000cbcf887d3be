/** Configuration of the registration service. */
import { baseConfigShape, databaseConfigShape } from '@latchkey/service-kit';
import type { z } from 'zod';

export const registrationConfigShape = { ...baseConfigShape, ...databaseConfigShape };

export type RegistrationConfig = z.infer<z.ZodObject<typeof registrationConfigShape>>;
