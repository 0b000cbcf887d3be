/** Prometheus metrics: process defaults plus request counts and latencies per method. */
import {
  CallHandler,
  Controller,
  ExecutionContext,
  Get,
  Header,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { catchError, tap, throwError, type Observable } from 'rxjs';
import { toDomainError } from '../errors/domain-error';

@Injectable()
export class MetricsRegistry {
  readonly registry = new Registry();
  readonly requests: Counter<'transport' | 'method' | 'outcome'>;
  readonly latency: Histogram<'transport' | 'method'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
    this.requests = new Counter({
      name: 'latchkey_requests_total',
      help: 'Requests handled, by transport, method and outcome',
      labelNames: ['transport', 'method', 'outcome'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'latchkey_request_duration_seconds',
      help: 'Request handling time',
      labelNames: ['transport', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
  }
}

@Injectable()
export class RequestMetricsInterceptor implements NestInterceptor {
  constructor(private readonly metrics: MetricsRegistry) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const transport = ctx.getType();
    const method = `${ctx.getClass().name}.${ctx.getHandler().name}`;
    const end = this.metrics.latency.startTimer({ transport, method });
    return next.handle().pipe(
      tap(() => {
        end();
        this.metrics.requests.inc({ transport, method, outcome: 'OK' });
      }),
      catchError((err: unknown) => {
        end();
        this.metrics.requests.inc({ transport, method, outcome: toDomainError(err).kind });
        return throwError(() => err);
      }),
    );
  }
}

@Controller()
export class MetricsController {
  constructor(private readonly metrics: MetricsRegistry) {}

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4')
  async scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
