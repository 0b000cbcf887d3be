/** Configuration of the registration service, validated at boot. */
import { keyEncryptionConfigShape } from '@latchkey/crypto';
import {
  baseConfigShape,
  databaseConfigShape,
  tokenValidationConfigShape,
  internalCallConfigShape,
} from '@latchkey/service-kit';
import { z } from 'zod';

const pem = (label: string) =>
  z
    .string()
    .refine((v) => v.includes(`-----BEGIN ${label}`), `must be a PEM ${label}`)
    .optional();

export const registrationConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  ...tokenValidationConfigShape,
  ...keyEncryptionConfigShape,
  ...internalCallConfigShape,
  /** Consumer group for auth's tenant events; defaults to KAFKA_CLIENT_ID, then latchkey-registration. */
  REGISTRATION_CONSUMER_GROUP: z.string().min(1).optional(),
  /**
   * Optional platform root: when both are set, each tenant CA is an intermediate
   * signed by it (the key comes from a Kubernetes Secret, PKCS#8 PEM).
   */
  DEVICE_CA_PLATFORM_ROOT_CERT: pem('CERTIFICATE'),
  DEVICE_CA_PLATFORM_ROOT_KEY: pem('PRIVATE KEY'),
  /** `aud` that device assertions sent to this service must carry. */
  DEVICE_ASSERTION_AUDIENCE: z.string().min(1).default('latchkey-registration'),
};

export type RegistrationConfig = z.infer<z.ZodObject<typeof registrationConfigShape>>;

export const REGISTRATION_CONFIG = Symbol('REGISTRATION_CONFIG');
