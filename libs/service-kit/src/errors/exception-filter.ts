/** The one place errors leave a service: gRPC status (rpc) or problem+json (http). */
import { ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { throwError, type Observable } from 'rxjs';
import { DomainError, toDomainError, toProblemDetails } from './domain-error';
import { toGrpcStatus } from './grpc-status';

const logger = new Logger('errors');

function normalize(exception: unknown): DomainError {
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404) return DomainError.notFound('ROUTE_NOT_FOUND', 'no such route');
    if (status >= 400 && status < 500)
      return DomainError.invalidArgument('MALFORMED_REQUEST', exception.message);
  }
  const parser = bodyParserError(exception);
  if (parser) return parser;
  const domain = toDomainError(exception);
  if (domain.kind === 'INTERNAL' || domain.kind === 'UNAVAILABLE') {
    const e = exception instanceof Error ? exception : new Error(String(exception));
    logger.error(`request failed (${domain.reason}): ${e.name}: ${e.message}`, e.stack);
  }
  return domain;
}

/**
 * The request-body parser's refusals (http-errors with `expose` and a `type`
 * such as entity.too.large or charset.unsupported) are the client's error. Nest
 * maps only its SyntaxError (bad JSON) to 400; the others would become 500.
 */
function bodyParserError(exception: unknown): DomainError | undefined {
  if (typeof exception !== 'object' || exception === null) return undefined;
  const e = exception as { status?: unknown; expose?: unknown; type?: unknown; message?: unknown };
  if (e.expose !== true || typeof e.type !== 'string' || typeof e.status !== 'number')
    return undefined;
  if (e.status < 400 || e.status > 499) return undefined;
  const reason =
    e.status === 413
      ? 'REQUEST_TOO_LARGE'
      : e.status === 415
        ? 'UNSUPPORTED_MEDIA_TYPE'
        : 'MALFORMED_REQUEST';
  return DomainError.invalidArgument(reason, String(e.message));
}

@Catch()
export class DomainErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): Observable<never> | void {
    const domain = normalize(exception);
    if (host.getType() === 'rpc') {
      const status = toGrpcStatus(domain);
      return throwError(() => status);
    }
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const problem = toProblemDetails(domain, req.originalUrl);
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  }
}
