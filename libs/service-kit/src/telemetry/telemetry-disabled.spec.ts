import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { startTelemetry } from './index';

describe('startTelemetry with OTEL_SDK_DISABLED=true', () => {
  it('registers no tracer provider and no propagator', async () => {
    const telemetry = startTelemetry('spec', { OTEL_SDK_DISABLED: 'TRUE' });
    const span = trace.getTracer('spec').startSpan('op');
    // The API's no-op tracer: a span that records nothing, with the invalid (all-zero) trace id.
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toBe('0'.repeat(32));
    span.end();
    // Even a valid incoming trace is not passed on: no W3C propagator is registered.
    const incoming = trace.setSpanContext(context.active(), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
    });
    const carrier: Record<string, string> = {};
    propagation.inject(incoming, carrier);
    expect(carrier).toEqual({});
    await telemetry.shutdown();
  });
});
