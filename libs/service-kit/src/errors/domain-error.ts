/** Domain errors and their one mapping to gRPC status codes and RFC 9457 problem details. */
import { status as GrpcStatus } from '@grpc/grpc-js';

export type ErrorKind =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * An error the caller can act on. `reason` is a stable, machine-readable
 * UPPER_SNAKE identifier (e.g. `DEVICE_NOT_FOUND`); `message` is for humans.
 */
export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly reason: string,
    message: string,
    readonly violations: readonly FieldViolation[] = [],
  ) {
    super(message);
    this.name = 'DomainError';
  }

  static invalidArgument(reason: string, message: string, violations: FieldViolation[] = []) {
    return new DomainError('INVALID_ARGUMENT', reason, message, violations);
  }
  static notFound(reason: string, message: string) {
    return new DomainError('NOT_FOUND', reason, message);
  }
  static unavailable(reason: string, message: string) {
    return new DomainError('UNAVAILABLE', reason, message);
  }
}

export const GRPC_CODE: Record<ErrorKind, GrpcStatus> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  INTERNAL: GrpcStatus.INTERNAL,
};

export const HTTP_STATUS: Record<ErrorKind, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 412,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'P1001', // Prisma: can't reach database server
  'P1002',
  'P1017', // Prisma: server closed the connection
  'P2024', // Prisma: timed out fetching a connection from the pool
  'P2028', // Prisma: transaction API error (could not start a transaction in time)
  '53300', // PostgreSQL: too many connections
  '57P01', // PostgreSQL: admin shutdown
  '57P02', // PostgreSQL: crash shutdown
  '57P03', // PostgreSQL: cannot connect now
]);

function looksUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false;
  const e = err as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  // PostgreSQL class 08: connection exceptions.
  if (typeof e.code === 'string' && /^08[0-9A-Z]{3}$/.test(e.code)) return true;
  if (e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSNumberOfRetriesExceeded')
    return true;
  if (
    typeof e.message === 'string' &&
    /Connection is closed|Stream isn't writeable|connect ECONNREFUSED|Connection terminated|timeout exceeded when trying to connect|DatabaseNotReachable/i.test(
      e.message,
    )
  )
    return true;
  return looksUnavailable(e.cause, depth + 1);
}

/**
 * Normalizes anything thrown into a DomainError. Infrastructure failures become
 * UNAVAILABLE (fail closed, client may retry); unknown errors become INTERNAL
 * without leaking their message.
 */
export function toDomainError(err: unknown): DomainError {
  if (err instanceof DomainError) return err;
  if (looksUnavailable(err)) {
    return DomainError.unavailable(
      'DEPENDENCY_UNAVAILABLE',
      'a dependency is unavailable; retry later',
    );
  }
  return new DomainError('INTERNAL', 'INTERNAL', 'internal error');
}

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  reason: string;
  instance?: string;
  violations?: readonly FieldViolation[];
}

export function toProblemDetails(err: DomainError, instance?: string): ProblemDetails {
  return {
    type: `https://latchkey.dev/problems/${err.reason.toLowerCase().replace(/_/g, '-')}`,
    title: err.kind.replace(/_/g, ' ').toLowerCase(),
    status: HTTP_STATUS[err.kind],
    detail: err.message,
    reason: err.reason,
    ...(instance ? { instance } : {}),
    ...(err.violations.length ? { violations: err.violations } : {}),
  };
}
