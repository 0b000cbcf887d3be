/**
 * OpenTelemetry for a latchkey service. Import this before anything else in
 * main.ts so the instrumented modules (http, express, grpc, pg, ioredis) are
 * patched before they are loaded. Kafka spans come from @latchkey/events.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export interface Telemetry {
  shutdown(): Promise<void>;
}

let started: Telemetry | undefined;

/** A processor that exports nothing: spans still exist so logs carry trace ids. */
const noExport: SpanProcessor = {
  onStart: () => undefined,
  onEnd: () => undefined,
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

export function startTelemetry(
  serviceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Telemetry {
  if (started) return started;
  // The OpenTelemetry SDK's own switch (OTEL_SDK_DISABLED=true): no provider, no
  // instrumentation, no propagation — spans are the API's no-ops and logs carry no trace ids.
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') {
    started = { shutdown: () => Promise.resolve() };
    return started;
  }
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const processor = endpoint
    ? new BatchSpanProcessor(
        new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }),
        { scheduledDelayMillis: Number(env.OTEL_BSP_SCHEDULE_DELAY ?? 1000) },
      )
    : noExport;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': `latchkey-${serviceName}`,
      'service.namespace': 'latchkey',
    }),
    spanProcessors: [processor],
  });
  provider.register();
  registerInstrumentations({
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)/.test(req.url ?? ''),
      }),
      new ExpressInstrumentation(),
      new GrpcInstrumentation({ ignoreGrpcMethods: ['Check', 'Watch'] }),
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
    ],
  });
  started = { shutdown: () => provider.shutdown() };
  return started;
}

export { context, propagation, trace };
