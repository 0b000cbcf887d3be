/**
 * Normalizes domain events to OCSF 1.5.0 records (category 3, Identity & Access
 * Management). One mapping per catalogue event type; what a class has no
 * attribute for goes under `unmapped`. Note on 1.5.0: Account Change has no
 * `auth_factors` attribute (it arrives in 1.7), so MFA factor details of 3001
 * records are carried as `unmapped.auth_factors`.
 */
import {
  DEVICE_REGISTRATION_FAILURE_REASONS,
  type DomainEvent,
  type ProvisioningFailureReason,
  SIGN_IN_FAILURE_REASONS,
} from '@latchkey/events';

export const OCSF_VERSION = '1.5.0';

export const OcsfClass = {
  accountChange: 3001,
  authentication: 3002,
  entityManagement: 3004,
} as const;

type SignInFailureReason = (typeof SIGN_IN_FAILURE_REASONS)[number];
type DeviceRegistrationFailureReason = (typeof DEVICE_REGISTRATION_FAILURE_REASONS)[number];

/**
 * Failure reasons, a fixed vocabulary a SIEM can group by (OCSF `status_code`): every
 * reason of the catalogue's failure events (sign-in, device registration, key
 * provisioning) has its code here; the compiler refuses a catalogue reason without one
 * and a unit test walks the catalogue's schemas for reason enums it does not know.
 * Anything else (a producer newer than this table) is OTHER.
 */
const FAILURE_CODES: Readonly<
  Record<SignInFailureReason | DeviceRegistrationFailureReason | ProvisioningFailureReason, string>
> = {
  // sign-in (password + TOTP)
  bad_credentials: 'BAD_CREDENTIALS',
  unknown_user: 'UNKNOWN_USER',
  bad_otp: 'BAD_OTP',
  otp_reused: 'OTP_REUSED',
  user_locked: 'USER_LOCKED',
  user_disabled: 'USER_DISABLED',
  rate_limited: 'RATE_LIMITED',
  mfa_ticket_invalid: 'MFA_TICKET_INVALID',
  // key sign-in and PRT refresh
  nonce_unknown_or_used: 'NONCE_UNKNOWN_OR_USED',
  bad_device_signature: 'BAD_DEVICE_SIGNATURE',
  bad_user_signature: 'BAD_USER_SIGNATURE',
  credential_not_active: 'CREDENTIAL_NOT_ACTIVE',
  credential_device_mismatch: 'CREDENTIAL_DEVICE_MISMATCH',
  device_not_active: 'DEVICE_NOT_ACTIVE',
  assertion_expired: 'ASSERTION_EXPIRED',
  audience_mismatch: 'AUDIENCE_MISMATCH',
  malformed_request: 'MALFORMED_REQUEST',
  refresh_token_invalid: 'REFRESH_TOKEN_INVALID',
  refresh_token_reused: 'REFRESH_TOKEN_REUSED',
  bad_session_proof: 'BAD_SESSION_PROOF',
  session_revoked: 'SESSION_REVOKED',
  // device registration
  invalid_request: 'INVALID_REQUEST',
  malformed_csr: 'MALFORMED_CSR',
  csr_signature_invalid: 'CSR_SIGNATURE_INVALID',
  key_not_allowed: 'KEY_NOT_ALLOWED',
  malformed_transport_key: 'MALFORMED_TRANSPORT_KEY',
  join_token_invalid: 'JOIN_TOKEN_INVALID',
  join_token_expired: 'JOIN_TOKEN_EXPIRED',
  join_token_exhausted: 'JOIN_TOKEN_EXHAUSTED',
  join_token_revoked: 'JOIN_TOKEN_REVOKED',
  join_token_tenant_mismatch: 'JOIN_TOKEN_TENANT_MISMATCH',
  device_name_not_allowed: 'DEVICE_NAME_NOT_ALLOWED',
  access_token_invalid: 'ACCESS_TOKEN_INVALID',
  permission_denied: 'PERMISSION_DENIED',
  attestation_invalid: 'ATTESTATION_INVALID',
  attestation_required: 'ATTESTATION_REQUIRED',
  // key provisioning
  mfa_stale: 'MFA_STALE',
  mfa_missing: 'MFA_MISSING',
  device_inactive: 'DEVICE_NOT_ACTIVE', // the same condition as key sign-in's device_not_active
  device_tenant_mismatch: 'DEVICE_TENANT_MISMATCH',
  policy_tpm_required: 'ATTESTATION_REQUIRED', // the tenant's policy demands a TPM-attested key
  algorithm_not_allowed: 'KEY_NOT_ALLOWED',
  key_limit: 'KEY_LIMIT',
  bad_proof: 'BAD_PROOF_OF_POSSESSION',
  bad_attestation: 'ATTESTATION_INVALID',
  challenge_unknown_or_used: 'NONCE_UNKNOWN_OR_USED',
  bad_device_assertion: 'BAD_DEVICE_SIGNATURE',
  malformed_key: 'MALFORMED_KEY',
  weak_key: 'KEY_NOT_ALLOWED',
};

/** The fixed-vocabulary code of a failure reason (OTHER when the reason is not in the catalogue). */
export function failureReason(raw: unknown): string {
  return typeof raw === 'string' && Object.hasOwn(FAILURE_CODES, raw)
    ? FAILURE_CODES[raw as keyof typeof FAILURE_CODES]
    : 'OTHER';
}

/** Every code of the vocabulary (for documentation and tests). */
export const FAILURE_CODE_VOCABULARY: readonly string[] = [
  ...new Set([...Object.values(FAILURE_CODES), 'OTHER']),
].sort();

const Severity = { informational: 1, low: 2, medium: 3, high: 4 } as const;
/** Authentication (3002) activities of OCSF 1.5.0. */
const AuthActivity = { logon: 1, logoff: 2, ticketRenew: 5 } as const;
/** `auth_protocol` (with auth_protocol_id 99, Other) of latchkey's ways to authenticate. */
export const AuthProtocol = {
  password: 'password+totp',
  key: 'latchkey-key',
  /** Refresh with the device-bound refresh token (PRT) and its session key. */
  refresh: 'latchkey-prt',
} as const;
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
/**
 * The user of an event that may know only a name, a key, or nothing: OCSF requires
 * `user`, identified by uid or name; an unknown one is named "unidentified" (type Unknown).
 */
function identifiedUser(data: Data) {
  const uid = str(data.userId);
  const name = str(data.username);
  const credential = str(data.credentialId);
  return uid || name
    ? clean({ uid, name, credential_uid: credential, type_id: 1 })
    : clean({ name: 'unidentified', credential_uid: credential, type_id: 0 });
}
function deviceRef(data: Data) {
  return str(data.deviceId) ? { uid: String(data.deviceId), type_id: 0 } : undefined;
}
function session(data: Data) {
  return str(data.sessionId)
    ? clean({ uid: String(data.sessionId), credential_uid: str(data.credentialId) })
    : undefined;
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
  /** When the activity depends on the data (else activity_id). */
  activity?: (data: Data) => number;
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
        status_detail: `device registration refused (${String(d.reason)})`,
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
        status_detail: `key provisioning refused at the ${String(d.stage)} step (${String(d.reason)})`,
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
    activity_id: AuthActivity.logon,
    map: (d) => {
      const key = d.method === 'key';
      return {
        attrs: {
          user: clean({ uid: str(d.userId), type_id: 1, credential_uid: str(d.credentialId) }),
          status_id: Status.success,
          is_mfa: Array.isArray(d.amr) && d.amr.length >= 2,
          is_new_logon: true,
          auth_protocol_id: 99, // Other: neither Kerberos, NTLM, SAML, OAuth nor OIDC
          auth_protocol: key ? AuthProtocol.key : AuthProtocol.password,
          device: deviceRef(d),
          session: session(d),
          src_endpoint: srcEndpoint(d),
        },
        // amr, tokenId and attestationLevel have no OCSF attribute: they stay in unmapped.
        mapped: [
          'userId',
          'credentialId',
          'deviceId',
          'sessionId',
          'method',
          'sourceIp',
          'tenantId',
        ],
        message: key
          ? `user ${String(d.userId)} signed in with key ${String(d.credentialId)} on device ${String(d.deviceId)}`
          : `user ${String(d.userId)} signed in`,
      };
    },
  },
  'dev.latchkey.auth.sign_in.failed.v1': {
    class_uid: OcsfClass.authentication,
    activity_id: AuthActivity.logon,
    // A refused PRT refresh is a refused ticket renewal, not a refused logon.
    activity: (d) => (d.stage === 'refresh' ? AuthActivity.ticketRenew : AuthActivity.logon),
    map: (d) => {
      const code = failureReason(d.reason);
      const who = str(d.username) ?? str(d.userId) ?? str(d.credentialId) ?? 'an unidentified user';
      return {
        attrs: {
          user: identifiedUser(d),
          status_id: Status.failure,
          status_code: code,
          status_detail:
            d.stage === 'refresh'
              ? `token refresh refused (${String(d.reason)})`
              : `sign-in failed at the ${String(d.stage)} step (${String(d.reason)})`,
          is_mfa: d.stage === 'otp' ? true : d.stage === 'password' ? false : undefined,
          auth_protocol_id: 99,
          auth_protocol:
            d.stage === 'key'
              ? AuthProtocol.key
              : d.stage === 'refresh'
                ? AuthProtocol.refresh
                : AuthProtocol.password,
          device: deviceRef(d),
          session: session(d),
          src_endpoint: srcEndpoint(d),
        },
        mapped: [
          'userId',
          'username',
          'credentialId',
          'deviceId',
          'sessionId',
          'reason',
          'sourceIp',
          'tenantId',
        ],
        // Refused refresh tokens that were already used point at a stolen PRT.
        severity: d.reason === 'refresh_token_reused' ? Severity.high : Severity.low,
        message: `${d.stage === 'refresh' ? 'token refresh' : 'sign-in'} of ${who} failed: ${code}`,
      };
    },
  },
  'dev.latchkey.auth.token.refreshed.v1': {
    class_uid: OcsfClass.authentication,
    activity_id: AuthActivity.ticketRenew,
    map: (d) => ({
      attrs: {
        user: clean({ uid: str(d.userId), type_id: 1, credential_uid: str(d.credentialId) }),
        status_id: Status.success,
        is_new_logon: false,
        auth_protocol_id: 99,
        auth_protocol: AuthProtocol.refresh,
        device: deviceRef(d),
        session: session(d),
        src_endpoint: srcEndpoint(d),
      },
      mapped: ['userId', 'credentialId', 'deviceId', 'sessionId', 'sourceIp', 'tenantId'],
      message: `session ${String(d.sessionId)} of user ${String(d.userId)} renewed its access token`,
    }),
  },
  'dev.latchkey.auth.session.revoked.v1': {
    class_uid: OcsfClass.authentication,
    activity_id: AuthActivity.logoff,
    map: (d) => {
      const reuse = d.trigger === 'refresh_token_reuse';
      return {
        attrs: {
          user: d.userId
            ? { uid: String(d.userId), type_id: 1 }
            : { name: 'all users of the device', type_id: 0 },
          actor: actor(d),
          status_id: Status.success,
          status_detail: `${String(d.revokedCount)} session(s) revoked by scope ${String(d.scope)}: ${String(d.reason)}`,
          device: deviceRef(d),
          session: session(d),
        },
        // scope, revokedCount, trigger and reason stay in unmapped as well (SIEM rules key on them).
        mapped: ['userId', 'deviceId', 'sessionId', 'actorId', 'tenantId'],
        severity: reuse ? Severity.high : Severity.informational,
        message: reuse
          ? `session ${String(d.sessionId ?? '')} revoked: a rotated-out refresh token was presented again`
          : `${String(d.revokedCount)} session(s) of ${d.scope === 'device' ? `device ${String(d.deviceId)}` : d.scope === 'user' ? `user ${String(d.userId)}` : `session ${String(d.sessionId)}`} revoked`,
      };
    },
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
  const activityId = mapping.activity?.(data) ?? mapping.activity_id;
  const { unmapped_auth_factors: authFactors, ...classAttrs } = attrs;
  const leftover = rest(data, mapped);
  const unmapped =
    leftover || authFactors
      ? { ...(leftover ?? {}), ...(authFactors ? { auth_factors: authFactors } : {}) }
      : undefined;
  return clean({
    class_uid: mapping.class_uid,
    category_uid: 3,
    activity_id: activityId,
    type_uid: mapping.class_uid * 100 + activityId,
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
