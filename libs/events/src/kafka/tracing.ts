/** Trace context across Kafka: W3C traceparent in the message headers. */
import {
  context,
  type Context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  trace,
} from '@opentelemetry/api';

export const tracer = trace.getTracer('@latchkey/events');

export function contextFromTraceparent(traceparent?: string, tracestate?: string): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, {
    traceparent,
    ...(tracestate ? { tracestate } : {}),
  });
}

/** Starts a PRODUCER span under the event's origin and returns the headers to send. */
export function startPublishSpan(
  topic: string,
  eventType: string,
  parent: Context,
): { span: Span; traceHeaders: Record<string, string> } {
  const span = tracer.startSpan(
    `${topic} publish`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.destination.name': topic,
        'messaging.operation.type': 'publish',
        'cloudevents.event_type': eventType,
      },
    },
    parent,
  );
  const traceHeaders: Record<string, string> = {};
  propagation.inject(trace.setSpan(parent, span), traceHeaders);
  return { span, traceHeaders };
}

/** Starts a CONSUMER span that continues the producer's trace. */
export function startProcessSpan(
  topic: string,
  eventType: string,
  eventId: string,
  traceparent?: string,
  tracestate?: string,
): { span: Span; ctx: Context } {
  const parent = contextFromTraceparent(traceparent, tracestate);
  const span = tracer.startSpan(
    `${topic} process`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.destination.name': topic,
        'messaging.operation.type': 'process',
        'messaging.message.id': eventId,
        'cloudevents.event_type': eventType,
      },
    },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

export { context };
