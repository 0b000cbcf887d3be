/**
 * Normalizes domain events to OCSF 1.5.0 records (category 3, Identity & Access
 * Management). One mapping per catalogue event type; what a class has no
 * attribute for goes under `unmapped`. Note on 1.5.0: Account Change has no
 * `auth_factors` attribute (it arrives in 1.7), so MFA factor details of 3001
 * records are carried as `unmapped.auth_factors`.
 */
import type { DomainEvent } from '@latchkey/events';

export const OCSF_VERSION = '1.5.0';

export const OcsfClass = {
  accountChange: 3001,
  authentication: 3002,
  entityManagement: 3004,
} as const;

/**
 * Failure reasons, a fixed vocabulary a SIEM can group by (OCSF `status_code`): the
 * catalogue's reason enums (SIGN_IN_FAILURE_REASONS, DEVICE_REGISTRATION_FAILURE_REASONS,
 * validated on consumption) in upper snake case, e.g. BAD_OTP, JOIN_TOKEN_EXPIRED;
 * anything else is OTHER.
 */
export function failureReason(raw: unknown): string {
  return typeof raw === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(raw)
    ? raw.toUpperCase()
    : 'OTHER';
}

const Severity = { informational: 1, low: 2, medium: 3 } as const;
const Status = { success: 1, failure: 2 } as const;

export type OcsfRecord = Record<string, unknown> & {
  class_uid: number;
  activity_id: number;
  metadata: Record<string, unknown>;
};

/** Columns the query API filters on, copied out of the OCSF record. */
export interface RecordFacets {
  classUid: number;
  activityId: number;
  statusId: number | null;
  userUid: string | null;
  deviceUid: string | null;
  credentialUid: string | null;
  reason: string | null;
}

export function traceIdOf(traceparent?: string): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent ?? '');
  return m ? m[1]! : null;
}

type Data = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);

/** Drops undefined members (JCS refuses them; OCSF omits absent attributes). */
function clean<T>(value: T): T {
  if (Array.isArray(value)) return value.map(clean) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = clean(v);
    return out as T;
  }
  return value;
}

const OS_TYPES: Record<string, number> = {
  windows: 100,
  linux: 200,
  macos: 300,
  ios: 301,
  ipados: 302,
  android: 400,
};

function user(data: Data) {
  return clean({ uid: str(data.userId), name: str(data.username), type_id: 1 });
}
function actor(data: Data) {
  return data.actorId ? { user: { uid: String(data.actorId) } } : undefined;
}
function srcEndpoint(data: Data) {
  return str(data.sourceIp) ? { ip: String(data.sourceIp) } : undefined;
}
function rest(data: Data, mapped: string[]): Data | undefined {
  const out: Data = {};
  for (const [k, v] of Object.entries(data)) if (!mapped.includes(k)) out[k] = v;
  return Object.keys(out).length ? out : undefined;
}

interface Mapping {
  class_uid: number;
  activity_id: number;
  /** Class-specific attributes, and data fields they consumed (the rest goes to `unmapped`). */
  map(data: Data): { attrs: Data; mapped: string[]; severity?: number; message: string };
}

const accountChange = (activity_id: number, verb: string): Mapping => ({
  class_uid: OcsfClass.accountChange,
  activity_id,
  map: (d) => ({
    attrs: { user: user(d), actor: actor(d) },
    mapped: ['userId', 'username', 'actorId', 'tenantId'],
    message: `user ${String(d.username ?? d.userId)} ${verb}`,
  }),
});

const deviceChange = (activity_id: number, verb: string): Mapping => ({
  class_uid: OcsfClass.entityManagement,
  activity_id,
  map: (d) => ({
    attrs: {
      entity: { uid: String(d.deviceId), type: 'Device' },
      device: { uid: String(d.deviceId), type_id: 0 },
      actor: actor(d),
      status_id: Status.success,
    },
    mapped: ['deviceId', 'actorId', 'tenantId'],
    message: `device ${String(d.deviceId)} ${verb}`,
  }),
});

const keyFactor = (d: Data) => [
  clean({
    factor_type: 'Other',
    factor_type_id: 99,
    provider: 'latchkey',
    device: d.deviceId ? { uid: String(d.deviceId), type_id: 0 } : undefined,
    unmapped: clean({
      credential_uid: str(d.credentialId),
      key: 'device-bound',
      attestation_level: str(d.attestationLevel),
      algorithm: str(d.algorithm),
    }),
  }),
];

const credentialChange = (activity_id: number, verb: string): Mapping => ({
  class_uid: OcsfClass.accountChange,
  activity_id,
  map: (d) => ({
    attrs: {
      user: user(d),
      device: { uid: String(d.deviceId), type_id: 0 },
      actor: actor(d),
      status_id: Status.success,
      unmapped_auth_factors: keyFactor(d),
    },
    mapped: ['userId', 'deviceId', 'actorId', 'tenantId'],
    message: `key ${String(d.credentialId)} of user ${String(d.userId)} ${verb}`,
  }),
});

const MAPPINGS: Record<string, Mapping> = {
  'dev.latchkey.device.registered.v1': {
    class_uid: OcsfClass.entityManagement,
    activity_id: 6, // Enroll
    map: (d) => ({
      attrs: {
        entity: { uid: String(d.deviceId), name: str(d.displayName), type: 'Device' },
        actor: actor(d),
        device: clean({
          uid: String(d.deviceId),
          name: str(d.displayName),
          type_id: 0,
          os: {
            name: String(d.osType),
            type_id: OS_TYPES[String(d.osType).toLowerCase()] ?? 99,
            version: str(d.osVersion),
          },
        }),
        status_id: Status.success,
      },
      mapped: ['deviceId', 'displayName', 'osType', 'osVersion', 'actorId', 'tenantId'],
      message: `device ${String(d.displayName)} enrolled`,
    }),
  },
  'dev.latchkey.device.registration_failed.v1': {
    class_uid: OcsfClass.entityManagement,
    activity_id: 6, // Enroll
    map: (d) => ({
      attrs: {
        entity: { name: str(d.displayName) ?? '(not registered)', type: 'Device' },
        actor: actor(d),
        status_id: Status.failure,
        status_code: failureReason(d.reason),
        status_detail: 'device registration refused',
      },
      mapped: ['displayName', 'actorId', 'reason', 'tenantId'],
      severity: Severity.low,
      message: `device registration refused: ${failureReason(d.reason)}`,
    }),
  },
  'dev.latchkey.device.disabled.v1': deviceChange(9, 'disabled'),
  'dev.latchkey.device.enabled.v1': deviceChange(8, 'enabled'),
  'dev.latchkey.device.deleted.v1': deviceChange(7, 'unenrolled'),
  'dev.latchkey.device.certificate_renewed.v1': deviceChange(3, 'certificate renewed'),
  'dev.latchkey.credential.provisioned.v1': credentialChange(10, 'provisioned'),
  'dev.latchkey.credential.reactivated.v1': credentialChange(10, 'reactivated'),
  'dev.latchkey.credential.revoked.v1': credentialChange(11, 'revoked'),
  'dev.latchkey.credential.suspended.v1': credentialChange(11, 'suspended'),
  'dev.latchkey.credential.deleted.v1': credentialChange(11, 'deleted'),
  'dev.latchkey.credential.provisioning_failed.v1': {
    class_uid: OcsfClass.accountChange,
    activity_id: 10, // MFA Factor Enable
    map: (d) => ({
      attrs: {
        user: user(d),
        device: str(d.deviceId) ? { uid: String(d.deviceId), type_id: 0 } : undefined,
        status_id: Status.failure,
        status_code: failureReason(d.reason),
        status_detail: `key provisioning refused at the ${String(d.stage)} step`,
        unmapped_auth_factors: keyFactor(d),
      },
      mapped: ['userId', 'deviceId', 'reason', 'tenantId'],
      severity: Severity.low,
      message: `key provisioning for user ${String(d.userId)} refused: ${failureReason(d.reason)}`,
    }),
  },
  'dev.latchkey.auth.tenant.created.v1': {
    class_uid: OcsfClass.entityManagement,
    activity_id: 1, // Create
    map: (d) => ({
      attrs: {
        entity: { uid: String(d.tenantId), name: str(d.name), type: 'Tenant' },
        actor: actor(d),
        status_id: Status.success,
      },
      mapped: ['tenantId', 'name', 'actorId'],
      message: `tenant ${String(d.name)} created`,
    }),
  },
  'dev.latchkey.auth.signing_key.rotated.v1': {
    class_uid: OcsfClass.entityManagement,
    activity_id: 3, // Update
    map: (d) => ({
      attrs: {
        entity: { uid: String(d.kid), type: 'Token Signing Key' },
        actor: actor(d),
        status_id: Status.success,
      },
      mapped: ['kid', 'actorId', 'tenantId'],
      message: `token-signing key rotated to ${String(d.kid)}`,
    }),
  },
  'dev.latchkey.auth.user.created.v1': accountChange(1, 'created'),
  'dev.latchkey.auth.user.enabled.v1': accountChange(2, 'enabled'),
  'dev.latchkey.auth.user.disabled.v1': accountChange(5, 'disabled'),
  'dev.latchkey.auth.user.deleted.v1': accountChange(6, 'deleted'),
  'dev.latchkey.auth.user.password_changed.v1': {
    class_uid: OcsfClass.accountChange,
    activity_id: 4, // Password Reset (rehash: see map)
    map: (d) => ({
      attrs: { user: user(d), actor: actor(d) },
      mapped: ['userId', 'actorId', 'tenantId'],
      message:
        d.origin === 'rehash'
          ? `password hash of user ${String(d.userId)} upgraded`
          : `password of user ${String(d.userId)} reset`,
    }),
  },
  'dev.latchkey.auth.user.locked.v1': {
    class_uid: OcsfClass.accountChange,
    activity_id: 9, // Lock
    map: (d) => ({
      attrs: { user: user(d), src_endpoint: srcEndpoint(d) },
      mapped: ['userId', 'username', 'sourceIp', 'tenantId'],
      severity: Severity.medium,
      message: `user ${String(d.username)} locked after ${String(d.failures)} failures`,
    }),
  },
  'dev.latchkey.auth.mfa.enrolled.v1': {
    class_uid: OcsfClass.accountChange,
    activity_id: 10, // MFA Factor Enable
    map: (d) => ({
      attrs: {
        user: user(d),
        unmapped_auth_factors: [{ factor_type: 'OTP', factor_type_id: 7 }],
      },
      mapped: ['userId', 'method', 'tenantId'],
      message: `user ${String(d.userId)} enrolled a ${String(d.method)} factor`,
    }),
  },
  'dev.latchkey.auth.sign_in.succeeded.v1': {
    class_uid: OcsfClass.authentication,
    activity_id: 1, // Logon
    map: (d) => ({
      attrs: {
        user: user(d),
        status_id: Status.success,
        is_mfa: Array.isArray(d.amr) && d.amr.length >= 2,
        auth_protocol_id: 99,
        auth_protocol: 'password+totp',
        src_endpoint: srcEndpoint(d),
      },
      mapped: ['userId', 'method', 'sourceIp', 'tenantId'],
      message: `user ${String(d.userId)} signed in`,
    }),
  },
  'dev.latchkey.auth.sign_in.failed.v1': {
    class_uid: OcsfClass.authentication,
    activity_id: 1, // Logon
    map: (d) => ({
      attrs: {
        user: user(d),
        status_id: Status.failure,
        status_code: failureReason(d.reason),
        status_detail: `sign-in failed at the ${String(d.stage)} step`,
        is_mfa: d.stage === 'otp',
        auth_protocol_id: 99,
        auth_protocol: 'password+totp',
        src_endpoint: srcEndpoint(d),
      },
      mapped: ['userId', 'username', 'reason', 'sourceIp', 'tenantId'],
      severity: Severity.low,
      message: `sign-in of ${String(d.username)} failed: ${failureReason(d.reason)}`,
    }),
  },
};

/** Event types with a specific OCSF mapping. */
export const MAPPED_EVENT_TYPES: readonly string[] = Object.keys(MAPPINGS);

/**
 * The OCSF record of `event` at chain position `seq` (carried as metadata.sequence,
 * so that the hash binds the position).
 */
export function toOcsf(event: DomainEvent, seq?: bigint): OcsfRecord {
  const data = (event.data ?? {}) as Data;
  const metadata = clean({
    uid: event.id,
    correlation_uid: traceIdOf(event.traceparent) ?? undefined,
    version: OCSF_VERSION,
    product: { name: 'latchkey', vendor_name: 'latchkey', uid: event.source },
    tenant_uid: event.tenantId,
    event_code: event.type,
    log_name: 'latchkey.audit.v1',
    original_time: event.time.toISOString(),
    sequence: seq === undefined ? undefined : Number(seq),
  });
  const mapping = MAPPINGS[event.type];
  if (!mapping) {
    return clean({
      class_uid: 0, // Base Event
      category_uid: 0,
      activity_id: 99,
      type_uid: 99,
      severity_id: Severity.informational,
      time: event.time.getTime(),
      message: event.type,
      metadata,
      unmapped: data,
    });
  }
  const { attrs, mapped, severity, message } = mapping.map(data);
  const { unmapped_auth_factors: authFactors, ...classAttrs } = attrs;
  const leftover = rest(data, mapped);
  const unmapped =
    leftover || authFactors
      ? { ...(leftover ?? {}), ...(authFactors ? { auth_factors: authFactors } : {}) }
      : undefined;
  return clean({
    class_uid: mapping.class_uid,
    category_uid: 3,
    activity_id: mapping.activity_id,
    type_uid: mapping.class_uid * 100 + mapping.activity_id,
    severity_id: severity ?? Severity.informational,
    time: event.time.getTime(),
    message,
    metadata,
    ...classAttrs,
    unmapped,
  });
}

/** The filterable facets of an OCSF record made by toOcsf. */
export function facetsOf(event: DomainEvent, record: OcsfRecord): RecordFacets {
  const data = (event.data ?? {}) as Data;
  const u = record.user as { uid?: string; name?: string } | undefined;
  const device = (record.device as { uid?: string } | undefined)?.uid ?? str(data.deviceId);
  return {
    classUid: record.class_uid,
    activityId: record.activity_id,
    statusId: typeof record.status_id === 'number' ? record.status_id : null,
    userUid: u?.uid ?? u?.name ?? str(data.userId) ?? null,
    deviceUid: device ?? null,
    credentialUid: str(data.credentialId) ?? null,
    reason: typeof record.status_code === 'string' ? record.status_code : null,
  };
}
