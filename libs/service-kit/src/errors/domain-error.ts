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

/** Error codes (Node, Prisma, PostgreSQL SQLSTATE) of a dependency that is down or restarting. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'P1001', // Prisma: can't reach database server
  'P1002', // Prisma: database server reached but timed out
  'P1008', // Prisma: operation timed out (socket timeout)
  'P1017', // Prisma: server closed the connection
  'P2024', // Prisma: timed out fetching a connection from the pool
  'P2028', // Prisma: transaction API error (could not start a transaction in time)
  'P2037', // Prisma: too many database connections
  '53300', // PostgreSQL: too many connections
  '57P01', // PostgreSQL: admin shutdown ("terminating connection due to administrator command")
  '57P02', // PostgreSQL: crash shutdown
  '57P03', // PostgreSQL: cannot connect now (starting up, shutting down, in recovery)
  '57P05', // PostgreSQL: idle session timeout
]);

/** Driver-adapter error kinds (`@prisma/adapter-pg`) of a connection that failed. */
const UNAVAILABLE_ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);

/** Error names (ioredis, KafkaJS) that mean the dependency is down or unreachable. */
const UNAVAILABLE_NAMES = new Set([
  'MaxRetriesPerRequestError',
  'ClusterAllFailedError',
  'KafkaJSConnectionError',
  'KafkaJSNumberOfRetriesExceeded',
]);

/**
 * Messages of the same failures, for errors that carry no code: pg's own errors (a socket
 * closed under a query, a client or pool no longer usable), ioredis's (commands in flight or
 * issued while disconnected), and a Prisma error whose text is all that is left of the cause.
 */
const UNAVAILABLE_MESSAGE = new RegExp(
  [
    // ioredis
    'Connection is closed',
    "Stream isn't writeable",
    'Reached the max retries per request limit',
    'Command aborted due to connection close',
    'Command timed out',
    'Cluster is disconnected',
    'None of startup nodes is available',
    'Failed to refresh slots cache',
    // pg and pg-pool
    'Connection terminated',
    'Client has encountered a connection error and is not queryable',
    'Client was closed and is not queryable',
    'timeout exceeded when trying to connect',
    'Cannot use a pool after calling end on the pool',
    'Query read timeout',
    // PostgreSQL (57P01, 57P02, 57P03) when only the text survives
    'terminating connection due to (administrator command|crash of another server process|idle-session timeout)',
    'the database system is (starting up|shutting down|in recovery mode|not yet accepting connections|not accepting connections)',
    'server closed the connection unexpectedly',
    // Prisma
    'Server has closed the connection',
    "Can't reach database server",
    'DatabaseNotReachable',
    // Node sockets
    'connect ECONNREFUSED',
    'read ECONNRESET',
    'write EPIPE',
  ].join('|'),
);

/** Redis replies while it loads its data set after a restart, or while it fails over. */
const UNAVAILABLE_REDIS_REPLY = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN) /;

/**
 * Whether `err` (or what it wraps) says a dependency is down: walks `cause`, Prisma's
 * `meta.driverAdapterError` / `meta.cause` and an AggregateError's `errors`.
 */
function looksUnavailable(err: unknown, depth = 0, seen = new Set<object>()): boolean {
  if (!err || typeof err !== 'object' || depth > 6 || seen.has(err)) return false;
  seen.add(err);
  const e = err as {
    code?: unknown;
    originalCode?: unknown;
    kind?: unknown;
    name?: unknown;
    message?: unknown;
    cause?: unknown;
    meta?: unknown;
    errors?: unknown;
  };
  for (const code of [e.code, e.originalCode]) {
    if (typeof code !== 'string') continue;
    if (UNAVAILABLE_CODES.has(code)) return true;
    // PostgreSQL class 08: connection exceptions (08000, 08003, 08006, ...).
    if (/^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  if (typeof e.kind === 'string' && UNAVAILABLE_ADAPTER_KINDS.has(e.kind)) return true;
  if (typeof e.name === 'string' && UNAVAILABLE_NAMES.has(e.name)) return true;
  if (typeof e.message === 'string') {
    if (UNAVAILABLE_MESSAGE.test(e.message)) return true;
    if (e.name === 'ReplyError' && UNAVAILABLE_REDIS_REPLY.test(e.message)) return true;
  }
  const next: unknown[] = [e.cause];
  if (e.meta && typeof e.meta === 'object') {
    const meta = e.meta as { driverAdapterError?: unknown; cause?: unknown };
    next.push(meta.driverAdapterError, meta.cause);
  }
  if (Array.isArray(e.errors)) next.push(...e.errors.slice(0, 8));
  return next.some((inner) => looksUnavailable(inner, depth + 1, seen));
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
