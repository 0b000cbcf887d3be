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

/**
 * The body of an HTTP request that changes something: it must be sent as
 * `application/json` and be a JSON object. (A body in another content type, or
 * an empty one, reaches controllers as `{}`, which would silently mean "all
 * defaults".)
 */
export function jsonObjectBody(
  req: { headers: Record<string, string | string[] | undefined>; rawBody?: unknown },
  body: unknown,
): Record<string, unknown> {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (!/^application\/([a-z0-9.+-]+\+)?json\b/.test(type))
    throw DomainError.invalidArgument(
      'BODY_NOT_JSON',
      'the request body must be a JSON object sent as application/json',
      [{ field: '(body)', description: 'content-type must be application/json' }],
    );
  // The body parser reads an empty body as {}: refuse it here rather than store "all defaults"
  // (by its Content-Length, or by the bytes the parser read when it came chunked).
  const raw = req.rawBody;
  if (req.headers['content-length'] === '0' || (Buffer.isBuffer(raw) && raw.length === 0))
    throw DomainError.invalidArgument('BODY_NOT_JSON', 'the request body is empty', [
      { field: '(body)', description: 'must be a JSON object' },
    ]);
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw DomainError.invalidArgument('BODY_NOT_JSON', 'the request body must be a JSON object', [
      { field: '(body)', description: 'must be a JSON object' },
    ]);
  return body as Record<string, unknown>;
}
