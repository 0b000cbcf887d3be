/** Request validation with zod that fails as INVALID_ARGUMENT with field violations. */
import type { z } from 'zod';
import { DomainError } from './domain-error';

export function parseRequest<T extends z.ZodTypeAny>(
  schema: T,
  input: unknown,
  reason = 'INVALID_REQUEST',
): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const violations = result.error.issues.map((i) => ({
    field: i.path.join('.') || '(request)',
    description: i.message,
  }));
  throw DomainError.invalidArgument(
    reason,
    `invalid request: ${violations.map((v) => `${v.field}: ${v.description}`).join('; ')}`,
    violations,
  );
}
