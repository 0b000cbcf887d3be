/**
 * Normalizes a domain event to an OCSF 1.5.0 record. Grows with the catalogue;
 * events without a specific mapping keep their data under `unmapped`.
 */
import type { DomainEvent } from '@latchkey/events';

export const OCSF_VERSION = '1.5.0';

export function traceIdOf(traceparent?: string): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent ?? '');
  return m ? m[1]! : null;
}

export function toOcsf(event: DomainEvent): Record<string, unknown> {
  const metadata = {
    uid: event.id,
    correlation_uid: traceIdOf(event.traceparent) ?? undefined,
    version: OCSF_VERSION,
    product: { name: 'latchkey', vendor_name: 'latchkey' },
    tenant_uid: event.tenantId,
    event_code: event.type,
    original_time: event.time.toISOString(),
  };
  const data = event.data as Record<string, unknown>;
  if (event.type === 'dev.latchkey.device.registered.v1') {
    // Entity Management (3004), activity Create (1).
    return {
      class_uid: 3004,
      category_uid: 3,
      activity_id: 1,
      type_uid: 300401,
      severity_id: 1,
      status_id: 1,
      time: event.time.getTime(),
      message: `device ${String(data.displayName)} registered`,
      metadata,
      entity: { uid: String(data.deviceId), name: String(data.displayName), type: 'device' },
      device: {
        uid: String(data.deviceId),
        name: String(data.displayName),
        os: { name: String(data.osType), version: String(data.osVersion) },
      },
      unmapped: { join_type: data.joinType, attestation_level: data.attestationLevel },
    };
  }
  return {
    class_uid: 0,
    category_uid: 0,
    activity_id: 99,
    type_uid: 99,
    severity_id: 1,
    time: event.time.getTime(),
    metadata,
    unmapped: data,
  };
}
