/** Prometheus metrics: process defaults plus request counts and latencies per method. */
import {
  status as GrpcStatus,
  ServerInterceptingCall,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { Controller, Get, Header, Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HTTP_STATUS } from '../errors/domain-error';

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

/**
 * Request counts and latencies are taken below Nest, where they cost least: a Nest
 * interceptor on every handler (rpc included) made Nest wrap each call in two
 * AsyncResources, about a tenth of a small RPC's CPU. gRPC calls are measured by a
 * grpc-js server interceptor, HTTP requests by a middleware, both labelled by what
 * the caller asked for ("AuthService.GetNonce", "GET /v1/devices/:id") and by outcome
 * ("OK" or the gRPC status / error kind).
 */
const MAX_METHOD_LABELS = 512;

/** Bounded label values: a caller cannot grow the metric's cardinality without limit. */
class MethodLabels {
  private readonly labels = new Map<string, string>();
  constructor(private readonly derive: (key: string) => string) {}
  get(key: string): string {
    let label = this.labels.get(key);
    if (label === undefined) {
      label = this.labels.size < MAX_METHOD_LABELS ? this.derive(key) : 'other';
      this.labels.set(key, label);
    }
    return label;
  }
}

/** "/latchkey.auth.v1.AuthService/GetNonce" → "AuthService.GetNonce". */
export function grpcMethodLabel(path: string): string {
  const m = /^\/(?:[\w.]*\.)?(\w+)\/(\w+)$/.exec(path);
  return m ? `${m[1]}.${m[2]}` : 'unknown';
}

/** A grpc-js server interceptor counting and timing every call by method and status. */
export function grpcRequestMetrics(metrics: MetricsRegistry): ServerInterceptor {
  const labels = new MethodLabels(grpcMethodLabel);
  return (descriptor, call) => {
    const method = labels.get(descriptor.path);
    const end = metrics.latency.startTimer({ transport: 'rpc', method });
    return new ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        end();
        const outcome =
          status.code === GrpcStatus.OK ? 'OK' : (GrpcStatus[status.code] ?? 'UNKNOWN');
        metrics.requests.inc({ transport: 'rpc', method, outcome });
        next(status);
      },
    });
  };
}

const KIND_BY_HTTP_STATUS = new Map<number, string>(
  Object.entries(HTTP_STATUS).map(([kind, status]) => [status, kind]),
);

/** The outcome label of an HTTP status: "OK" below 400, else the error kind it stands for. */
export function httpOutcome(status: number): string {
  if (status < 400) return 'OK';
  return KIND_BY_HTTP_STATUS.get(status) ?? (status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL');
}

interface HttpRequestLike {
  method: string;
  baseUrl?: string;
  route?: { path?: unknown };
}
interface HttpResponseLike {
  statusCode: number;
  writableFinished: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/** An Express middleware counting and timing every request by matched route and outcome. */
export function httpRequestMetrics(metrics: MetricsRegistry) {
  const labels = new MethodLabels((key) => key);
  return (req: HttpRequestLike, res: HttpResponseLike, next: () => void): void => {
    const started = performance.now();
    res.once('close', () => {
      // The matched route's pattern, never the raw path (ids would make one series each).
      const route =
        typeof req.route?.path === 'string' ? `${req.baseUrl ?? ''}${req.route.path}` : '';
      const method = route ? labels.get(`${req.method} ${route}`) : 'unmatched';
      metrics.latency.observe({ transport: 'http', method }, (performance.now() - started) / 1000);
      const outcome = res.writableFinished ? httpOutcome(res.statusCode) : 'CANCELLED';
      metrics.requests.inc({ transport: 'http', method, outcome });
    });
    next();
  };
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
