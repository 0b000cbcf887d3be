/** Configuration of the audit service. */
import { baseConfigShape, databaseConfigShape } from '@latchkey/service-kit';
import { z } from 'zod';

export const auditConfigShape = {
  ...baseConfigShape,
  ...databaseConfigShape,
  AUDIT_CONSUMER_GROUP: z.string().min(1).default('latchkey-audit'),
};

export type AuditConfig = z.infer<z.ZodObject<typeof auditConfigShape>>;
