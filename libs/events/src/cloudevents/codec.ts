/**
 * CloudEvents 1.0 Kafka protocol binding, binary content mode: attributes in
 * `ce_*` headers, the data as the JSON value, the tenant id as the key.
 */
import { eventDefinition, type EventDefinition } from '../catalogue/catalogue';
import { type DomainEvent, EventSchemaError, validateEventData } from '../catalogue/domain-event';

export interface KafkaRecord {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers: Record<string, string | Buffer | (string | Buffer)[] | undefined>;
}

export type MalformedReason =
  | 'MISSING_ATTRIBUTE'
  | 'UNSUPPORTED_SPECVERSION'
  | 'UNSUPPORTED_CONTENT_TYPE'
  | 'INVALID_TIME'
  | 'INVALID_JSON'
  | 'UNKNOWN_EVENT_TYPE'
  | 'SCHEMA_VIOLATION'
  | 'KEY_MISMATCH';

export class MalformedEventError extends Error {
  constructor(
    readonly reason: MalformedReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'MalformedEventError';
  }
}

export function encodeEvent(event: DomainEvent): KafkaRecord & { key: string; value: string } {
  const headers: Record<string, string> = {
    ce_specversion: '1.0',
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    ce_time: event.time.toISOString(),
    ce_subject: event.subject,
    ce_tenantid: event.tenantId,
    'content-type': 'application/json',
  };
  if (event.traceparent) headers.traceparent = event.traceparent;
  if (event.tracestate) headers.tracestate = event.tracestate;
  return { key: event.tenantId, value: JSON.stringify(event.data), headers };
}

function header(record: KafkaRecord, name: string): string | undefined {
  const raw = record.headers[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined ? undefined : value.toString();
}

function required(record: KafkaRecord, name: string): string {
  const value = header(record, name);
  if (!value) throw new MalformedEventError('MISSING_ATTRIBUTE', `header ${name} is missing`);
  return value;
}

export interface DecodedEvent extends DomainEvent {
  definition: EventDefinition;
}

/** Decodes and validates a consumed record; throws MalformedEventError with a reason. */
export function decodeEvent(record: KafkaRecord): DecodedEvent {
  const specversion = required(record, 'ce_specversion');
  if (specversion !== '1.0')
    throw new MalformedEventError('UNSUPPORTED_SPECVERSION', `ce_specversion ${specversion}`);
  const id = required(record, 'ce_id');
  const source = required(record, 'ce_source');
  const type = required(record, 'ce_type');
  const tenantId = required(record, 'ce_tenantid');
  const subject = required(record, 'ce_subject');
  const timeText = required(record, 'ce_time');
  const time = new Date(timeText);
  if (Number.isNaN(time.getTime()))
    throw new MalformedEventError('INVALID_TIME', `ce_time ${timeText} is not RFC 3339`);
  const contentType = header(record, 'content-type') ?? 'application/json';
  if (!/^application\/(cloudevents\+)?json\b/.test(contentType))
    throw new MalformedEventError('UNSUPPORTED_CONTENT_TYPE', contentType);
  const key = record.key?.toString();
  if (key !== tenantId)
    throw new MalformedEventError('KEY_MISMATCH', 'message key is not the event tenant id');
  const definition = eventDefinition(type);
  if (!definition) throw new MalformedEventError('UNKNOWN_EVENT_TYPE', type);
  let json: unknown;
  try {
    json = JSON.parse(record.value?.toString() ?? '');
  } catch {
    throw new MalformedEventError('INVALID_JSON', 'value is not JSON');
  }
  let data: unknown;
  try {
    data = validateEventData(definition, json);
  } catch (err) {
    if (err instanceof EventSchemaError)
      throw new MalformedEventError('SCHEMA_VIOLATION', err.issues.join('; '));
    throw err;
  }
  const traceparent = header(record, 'traceparent');
  const tracestate = header(record, 'tracestate');
  return {
    id,
    type,
    source,
    subject,
    tenantId,
    time,
    data,
    definition,
    ...(traceparent ? { traceparent } : {}),
    ...(tracestate ? { tracestate } : {}),
  };
}
