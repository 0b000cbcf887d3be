/** A domain event as latchkey handles it, before and after its trip through Kafka. */
import { randomUUID } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import type { z } from 'zod';
import type { EventDefinition } from './catalogue';

export interface DomainEvent<T = unknown> {
  id: string;
  type: string;
  source: string;
  subject: string;
  tenantId: string;
  time: Date;
  data: T;
  /** W3C trace context of the operation that caused the event. */
  traceparent?: string;
  tracestate?: string;
}

export class EventSchemaError extends Error {
  constructor(
    readonly type: string,
    readonly issues: string[],
  ) {
    super(`event ${type} does not match its schema: ${issues.join('; ')}`);
    this.name = 'EventSchemaError';
  }
}

export function validateEventData<S extends z.ZodTypeAny>(
  def: EventDefinition<S>,
  data: unknown,
): z.infer<S> {
  const result = def.schema.safeParse(data);
  if (!result.success) {
    throw new EventSchemaError(
      def.type,
      result.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`),
    );
  }
  return result.data;
}

/** Makes a new event of `def`, validated, carrying the active trace context. */
export function createEvent<S extends z.ZodTypeAny>(
  def: EventDefinition<S>,
  tenantId: string,
  data: z.infer<S>,
  now = new Date(),
): DomainEvent<z.infer<S>> {
  const valid = validateEventData(def, data);
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return {
    id: randomUUID(),
    type: def.type,
    source: def.source,
    subject: def.subject(valid),
    tenantId,
    time: now,
    data: valid,
    ...(carrier.traceparent ? { traceparent: carrier.traceparent } : {}),
    ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}),
  };
}
