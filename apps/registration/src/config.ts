/** Configuration of the registration service, validated at boot. */
import { keyEncryptionConfigShape } from '@latchkey/crypto';
import {
  baseConfigShape,
  databaseConfigShape,
  tokenValidationConfigShape,
  internalCallVerifierConfigShape,
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
  ...internalCallVerifierConfigShape,
  /** Consumer group for auth's tenant events; defaults to KAFKA_CLIENT_ID, then latchkey-registration. */
  REGISTRATION_CONSUMER_GROUP: z.string().min(1).optional(),
  /**
   * Optional platform root: when both are set, each tenant CA is an intermediate
   * signed by it (the key comes from a Kubernetes Secret, PKCS#8 PEM).
   */
  DEVICE_CA_PLATFORM_ROOT_CERT: pem('CERTIFICATE'),
  DEVICE_CA_PLATFORM_ROOT_KEY: pem('PRIVATE KEY'),
  /**
   * Worker threads that check the keys of registrations and renewals (CSR parse and
   * signature, key policy, transport key): most of a registration's CPU, off the main
   * thread. 0 checks them on the main thread. Default 1: a second core for a pod that has one.
   */
  REGISTRATION_KEY_CHECK_WORKERS: z.coerce.number().int().min(0).max(16).default(1),
  /** `aud` that device assertions sent to this service must carry. */
  DEVICE_ASSERTION_AUDIENCE: z.string().min(1).default('latchkey-registration'),
};

export type RegistrationConfig = z.infer<z.ZodObject<typeof registrationConfigShape>>;

export const REGISTRATION_CONFIG = Symbol('REGISTRATION_CONFIG');
