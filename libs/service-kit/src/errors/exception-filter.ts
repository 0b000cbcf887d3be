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
  const domain = toDomainError(exception);
  if (domain.kind === 'INTERNAL' || domain.kind === 'UNAVAILABLE') {
    const e = exception instanceof Error ? exception : new Error(String(exception));
    logger.error(`request failed (${domain.reason}): ${e.name}: ${e.message}`, e.stack);
  }
  return domain;
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
