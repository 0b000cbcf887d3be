/**
 * Every OCSF record audit produces, checked against OCSF 1.5.0: the base event's
 * required attributes, each class's own required attributes and activity ids,
 * type_uid, and the objects' own requirements (metadata.product.vendor_name,
 * user/entity identified, device.type_id, os.name + type_id).
 */
import { randomUUID } from 'node:crypto';
import { EVENT_CATALOGUE, type DomainEvent } from '@latchkey/events';
import { z } from 'zod';
import {
  facetsOf,
  FAILURE_CODE_VOCABULARY,
  failureReason,
  MAPPED_EVENT_TYPES,
  OCSF_VERSION,
  type OcsfRecord,
  type RecordFacets,
  toOcsf,
} from './ocsf';

const tenantId = randomUUID();
const userId = randomUUID();
const deviceId = randomUUID();
const credentialId = 'A'.repeat(43);
const sessionId = randomUUID();
const cred = { tenantId, userId, deviceId, credentialId };
const change = { ...cred, cause: 'admin', actorId: userId };

/** Valid data for every catalogue event type (checked against the catalogue below). */
const SAMPLES: Record<string, object> = {
  'dev.latchkey.device.registered.v1': {
    tenantId,
    deviceId,
    displayName: 'Laptop',
    osType: 'windows',
    osVersion: '11',
    joinType: 'joined',
    attestationLevel: 'tpm',
  },
  'dev.latchkey.device.registration_failed.v1': { tenantId, reason: 'join_token_expired' },
  'dev.latchkey.device.disabled.v1': { tenantId, deviceId, actorId: userId },
  'dev.latchkey.device.enabled.v1': { tenantId, deviceId },
  'dev.latchkey.device.deleted.v1': { tenantId, deviceId, revokedSerials: ['0a1b'] },
  'dev.latchkey.device.certificate_renewed.v1': {
    tenantId,
    deviceId,
    previousSerial: '0a',
    certificateSerial: '0b',
    notAfter: '2027-01-01T00:00:00.000Z',
    deviceKeyThumbprint: 'x',
    keyChanged: false,
  },
  'dev.latchkey.auth.tenant.created.v1': { tenantId, name: 'acme', displayName: 'Acme' },
  'dev.latchkey.auth.user.created.v1': {
    tenantId,
    userId,
    username: 'alice',
    roles: ['user'],
    origin: 'admin',
  },
  'dev.latchkey.auth.user.disabled.v1': { tenantId, userId },
  'dev.latchkey.auth.user.enabled.v1': { tenantId, userId },
  'dev.latchkey.auth.user.deleted.v1': { tenantId, userId },
  'dev.latchkey.auth.user.password_changed.v1': { tenantId, userId, origin: 'admin_reset' },
  'dev.latchkey.auth.mfa.enrolled.v1': { tenantId, userId, method: 'totp' },
  'dev.latchkey.auth.sign_in.succeeded.v1': {
    tenantId,
    userId,
    method: 'pwd+otp',
    amr: ['pwd', 'otp'],
    tokenId: 't1',
    sourceIp: '192.0.2.1',
  },
  'dev.latchkey.auth.sign_in.failed.v1': {
    tenantId,
    username: 'mallory',
    stage: 'password',
    reason: 'unknown_user',
  },
  'dev.latchkey.auth.user.locked.v1': {
    tenantId,
    userId,
    username: 'alice',
    failures: 5,
    lockedUntil: '2027-01-01T00:00:00.000Z',
  },
  'dev.latchkey.auth.signing_key.rotated.v1': {
    tenantId,
    kid: 'k2',
    previousKid: 'k1',
    nextKid: 'k3',
    trigger: 'schedule',
  },
  'dev.latchkey.credential.provisioned.v1': {
    ...cred,
    algorithm: 'ES256',
    attestationLevel: 'tpm',
    replacedCredentialIds: [],
  },
  'dev.latchkey.credential.provisioning_failed.v1': {
    tenantId,
    userId,
    stage: 'begin',
    reason: 'mfa_stale',
  },
  'dev.latchkey.credential.revoked.v1': change,
  'dev.latchkey.credential.suspended.v1': change,
  'dev.latchkey.credential.reactivated.v1': change,
  'dev.latchkey.credential.deleted.v1': cred,
  'dev.latchkey.auth.token.refreshed.v1': {
    tenantId,
    userId,
    deviceId,
    credentialId,
    sessionId,
    tokenId: 'jti-2',
    sourceIp: '192.0.2.7',
  },
  'dev.latchkey.auth.session.revoked.v1': {
    tenantId,
    scope: 'user',
    userId,
    revokedCount: 2,
    trigger: 'admin',
    reason: 'laptop stolen',
    actorId: userId,
  },
};

/** More shapes of the same types: each goes through every class check as well. */
const VARIANTS: [string, string, object][] = [
  [
    'key sign-in',
    'dev.latchkey.auth.sign_in.succeeded.v1',
    {
      tenantId,
      userId,
      method: 'key',
      amr: ['hwk', 'user'],
      tokenId: 't2',
      deviceId,
      credentialId,
      attestationLevel: 'tpm',
      sessionId,
    },
  ],
  [
    'refused key sign-in with nothing known about the user',
    'dev.latchkey.auth.sign_in.failed.v1',
    { tenantId, stage: 'key', reason: 'malformed_request' },
  ],
  [
    'refused key sign-in naming a key and a device',
    'dev.latchkey.auth.sign_in.failed.v1',
    { tenantId, stage: 'key', reason: 'bad_user_signature', deviceId, credentialId },
  ],
  [
    'refused refresh (a reused PRT)',
    'dev.latchkey.auth.sign_in.failed.v1',
    { tenantId, userId, stage: 'refresh', reason: 'refresh_token_reused', deviceId, sessionId },
  ],
  [
    'OTP step failure',
    'dev.latchkey.auth.sign_in.failed.v1',
    { tenantId, userId, username: 'alice', stage: 'otp', reason: 'bad_otp' },
  ],
  [
    'every session of a device revoked',
    'dev.latchkey.auth.session.revoked.v1',
    { tenantId, scope: 'device', deviceId, revokedCount: 3, trigger: 'admin', reason: 'lost' },
  ],
  [
    'a session revoked on refresh-token reuse',
    'dev.latchkey.auth.session.revoked.v1',
    {
      tenantId,
      scope: 'session',
      userId,
      sessionId,
      revokedCount: 1,
      trigger: 'refresh_token_reuse',
      reason: 'refresh token presented twice',
    },
  ],
  [
    'device registration refused by attestation policy',
    'dev.latchkey.device.registration_failed.v1',
    { tenantId, reason: 'attestation_required', displayName: 'kiosk-1', osType: 'linux' },
  ],
];

/** OCSF 1.5.0 classes latchkey emits: own required attributes and activity ids. */
const CLASSES: Record<number, { name: string; required: string[]; activities: number[] }> = {
  3001: {
    name: 'Account Change',
    required: ['user'],
    activities: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 99],
  },
  3002: {
    name: 'Authentication',
    required: ['user'],
    activities: [0, 1, 2, 3, 4, 5, 6, 7, 99],
  },
  3004: {
    name: 'Entity Management',
    required: ['entity'],
    activities: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 99],
  },
};
const BASE_REQUIRED = [
  'activity_id',
  'category_uid',
  'class_uid',
  'type_uid',
  'severity_id',
  'time',
  'metadata',
];
/** Attributes that 1.5.0 does not define on these classes: must be under `unmapped`. */
const NOT_IN_1_5: Record<number, string[]> = { 3001: ['auth_factors'] };

const AUDIT_OWN = /^dev\.latchkey\.audit\./;
const domainTypes = [...EVENT_CATALOGUE.keys()].filter((t) => !AUDIT_OWN.test(t));

function eventOf(type: string, sample: object = SAMPLES[type]!): DomainEvent {
  const def = EVENT_CATALOGUE.get(type)!;
  const data = def.schema.parse(sample);
  return {
    id: randomUUID(),
    type,
    source: def.source,
    subject: def.subject(data),
    tenantId,
    time: new Date('2026-11-25T12:00:00.123Z'),
    data,
    traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
  };
}

describe(`OCSF ${OCSF_VERSION} normalization`, () => {
  it('has a specific mapping and a sample for every domain event type in the catalogue', () => {
    expect(domainTypes.filter((t) => !MAPPED_EVENT_TYPES.includes(t))).toEqual([]);
    expect(domainTypes.filter((t) => !SAMPLES[t])).toEqual([]);
  });

  const cases: [string, string, object][] = [
    ...domainTypes
      .filter((t) => SAMPLES[t])
      .map((t): [string, string, object] => [t, t, SAMPLES[t]!]),
    ...VARIANTS.map(([name, t, d]): [string, string, object] => [`${t} (${name})`, t, d]),
  ];
  describe.each(cases)('%s', (_name, type, sample) => {
    const event = eventOf(type, sample);
    const record: OcsfRecord = toOcsf(event, 42n);
    const cls = CLASSES[record.class_uid];

    it('is one of the classes latchkey emits, with an activity of that class', () => {
      expect(cls).toBeDefined();
      expect(cls!.activities).toContain(record.activity_id);
      expect(record.category_uid).toBe(3);
      expect(record.type_uid).toBe(record.class_uid * 100 + record.activity_id);
    });

    it("has the base event's and its class's required attributes", () => {
      for (const attr of [...BASE_REQUIRED, ...cls!.required])
        expect(record).toHaveProperty([attr]);
      expect([0, 1, 2, 3, 4, 5, 6, 99]).toContain(record.severity_id);
      expect(record.time).toBe(event.time.getTime());
    });

    it('carries the event identity in metadata', () => {
      expect(record.metadata).toMatchObject({
        version: OCSF_VERSION,
        uid: event.id,
        correlation_uid: 'a'.repeat(32),
        tenant_uid: tenantId,
        sequence: 42,
        product: { vendor_name: 'latchkey', name: 'latchkey' },
      });
    });

    it("meets the objects' own requirements", () => {
      const r = record as Record<string, Record<string, unknown> | undefined>;
      if (r.user) expect(r.user.uid ?? r.user.name ?? r.user.account).toBeDefined();
      if (r.entity) expect(r.entity.uid ?? r.entity.name).toBeDefined();
      if (r.device) expect(typeof r.device.type_id).toBe('number');
      const os = r.device?.os as Record<string, unknown> | undefined;
      if (os) {
        expect(typeof os.name).toBe('string');
        expect(typeof os.type_id).toBe('number');
      }
      if (r.status_id) expect([0, 1, 2, 99]).toContain(r.status_id);
      if (record.status_id === 2) expect(record.status_code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      for (const attr of NOT_IN_1_5[record.class_uid] ?? [])
        expect(record).not.toHaveProperty([attr]);
    });
  });

  it('maps sign-ins to Authentication: Logon with status, is_mfa and auth_protocol', () => {
    const ok = toOcsf(eventOf('dev.latchkey.auth.sign_in.succeeded.v1'), 1n);
    expect(ok).toMatchObject({
      class_uid: 3002,
      activity_id: 1,
      status_id: 1,
      is_mfa: true,
      auth_protocol: 'password+totp',
      src_endpoint: { ip: '192.0.2.1' },
    });
    const bad = toOcsf(eventOf('dev.latchkey.auth.sign_in.failed.v1'), 2n);
    expect(bad).toMatchObject({
      status_id: 2,
      status_code: 'UNKNOWN_USER',
      user: { name: 'mallory' },
    });
  });

  it('maps key provisioning and revocation to Account Change: MFA Factor Enable/Disable', () => {
    const enable = toOcsf(eventOf('dev.latchkey.credential.provisioned.v1'), 1n);
    expect(enable).toMatchObject({ class_uid: 3001, activity_id: 10, type_uid: 300110 });
    expect((enable.unmapped as { auth_factors: unknown[] }).auth_factors).toHaveLength(1);
    const disable = toOcsf(eventOf('dev.latchkey.credential.revoked.v1'), 2n);
    expect(disable).toMatchObject({ class_uid: 3001, activity_id: 11, type_uid: 300111 });
  });

  it('maps device registration and deletion to Entity Management: Enroll/Unenroll', () => {
    expect(toOcsf(eventOf('dev.latchkey.device.registered.v1'))).toMatchObject({
      class_uid: 3004,
      activity_id: 6,
      type_uid: 300406,
      device: { os: { name: 'windows', type_id: 100 } },
    });
    expect(toOcsf(eventOf('dev.latchkey.device.deleted.v1'))).toMatchObject({
      activity_id: 7,
      type_uid: 300407,
    });
  });

  it('keeps data the class has no attribute for under unmapped', () => {
    const r = toOcsf(eventOf('dev.latchkey.device.registered.v1'));
    expect(r.unmapped).toEqual({ joinType: 'joined', attestationLevel: 'tpm' });
  });

  it('maps key sign-in to Authentication: Logon with latchkey-key, the device, the key and the session', () => {
    const r = toOcsf(eventOf(VARIANTS[0]![1], VARIANTS[0]![2]), 1n);
    expect(r).toMatchObject({
      class_uid: 3002,
      activity_id: 1,
      type_uid: 300201,
      status_id: 1,
      is_mfa: true,
      auth_protocol_id: 99,
      auth_protocol: 'latchkey-key',
      user: { uid: userId, credential_uid: credentialId },
      device: { uid: deviceId },
      session: { uid: sessionId },
      unmapped: { attestationLevel: 'tpm', amr: ['hwk', 'user'], tokenId: 't2' },
    });
  });

  it('maps refused key sign-ins and refreshes with the stage’s protocol and activity', () => {
    const key = toOcsf(eventOf(VARIANTS[2]![1], VARIANTS[2]![2]), 1n);
    expect(key).toMatchObject({
      activity_id: 1,
      status_id: 2,
      status_code: 'BAD_USER_SIGNATURE',
      auth_protocol: 'latchkey-key',
      user: { credential_uid: credentialId },
      device: { uid: deviceId },
    });
    const anonymous = toOcsf(eventOf(VARIANTS[1]![1], VARIANTS[1]![2]), 1n);
    expect(anonymous.user).toEqual({ name: 'unidentified', type_id: 0 });
    const refresh = toOcsf(eventOf(VARIANTS[3]![1], VARIANTS[3]![2]), 1n);
    expect(refresh).toMatchObject({
      activity_id: 5, // Service Ticket Renew
      type_uid: 300205,
      status_code: 'REFRESH_TOKEN_REUSED',
      auth_protocol: 'latchkey-prt',
      severity_id: 4,
      session: { uid: sessionId },
    });
  });

  it('maps a PRT refresh to Authentication: Service Ticket Renew and a revocation to Logoff', () => {
    expect(toOcsf(eventOf('dev.latchkey.auth.token.refreshed.v1'), 1n)).toMatchObject({
      class_uid: 3002,
      activity_id: 5,
      status_id: 1,
      auth_protocol: 'latchkey-prt',
      user: { uid: userId, credential_uid: credentialId },
      device: { uid: deviceId },
      session: { uid: sessionId },
      src_endpoint: { ip: '192.0.2.7' },
      unmapped: { tokenId: 'jti-2' },
    });
    expect(toOcsf(eventOf('dev.latchkey.auth.session.revoked.v1'), 2n)).toMatchObject({
      class_uid: 3002,
      activity_id: 2,
      type_uid: 300202,
      user: { uid: userId },
      actor: { user: { uid: userId } },
      unmapped: { scope: 'user', revokedCount: 2, trigger: 'admin', reason: 'laptop stolen' },
    });
    const reuse = toOcsf(eventOf(VARIANTS[6]![1], VARIANTS[6]![2]), 3n);
    expect(reuse).toMatchObject({ activity_id: 2, severity_id: 4, session: { uid: sessionId } });
  });

  describe('device lifecycle (the payloads registration writes) to Entity Management', () => {
    const joinTokenId = randomUUID();
    const base = { class_uid: 3004, category_uid: 3 };
    const deviceRecord = {
      entity: { uid: deviceId, type: 'Device' },
      device: { uid: deviceId, type_id: 0 },
      status_id: 1,
      severity_id: 1,
    };
    const cases: [string, string, object, Record<string, unknown>, Partial<RecordFacets>][] = [
      [
        'a refused registration: Enroll, failed, with the reason',
        'dev.latchkey.device.registration_failed.v1',
        {
          tenantId,
          reason: 'join_token_expired',
          joinTokenId,
          actorId: `join-token:${joinTokenId}`,
          displayName: 'kiosk-1',
          osType: 'linux',
        },
        {
          ...base,
          activity_id: 6,
          type_uid: 300406,
          severity_id: 2,
          status_id: 2,
          status_code: 'JOIN_TOKEN_EXPIRED',
          status_detail: 'device registration refused (join_token_expired)',
          entity: { name: 'kiosk-1', type: 'Device' },
          actor: { user: { uid: `join-token:${joinTokenId}` } },
          message: 'device registration refused: JOIN_TOKEN_EXPIRED',
          unmapped: { joinTokenId, osType: 'linux' },
        },
        { statusId: 2, reason: 'JOIN_TOKEN_EXPIRED', deviceUid: null },
      ],
      [
        'a disabled device: Disable, by its admin, the reason unmapped',
        'dev.latchkey.device.disabled.v1',
        { tenantId, deviceId, actorId: userId, reason: 'reported lost' },
        {
          ...base,
          ...deviceRecord,
          activity_id: 9,
          type_uid: 300409,
          actor: { user: { uid: userId } },
          message: `device ${deviceId} disabled`,
          unmapped: { reason: 'reported lost' },
        },
        { statusId: 1, reason: null, deviceUid: deviceId },
      ],
      [
        'an enabled device: Enable, by its admin',
        'dev.latchkey.device.enabled.v1',
        { tenantId, deviceId, actorId: userId },
        {
          ...base,
          ...deviceRecord,
          activity_id: 8,
          type_uid: 300408,
          actor: { user: { uid: userId } },
          message: `device ${deviceId} enabled`,
        },
        { statusId: 1, reason: null, deviceUid: deviceId },
      ],
      [
        'a deleted device: Unenroll, the revoked serials unmapped',
        'dev.latchkey.device.deleted.v1',
        { tenantId, deviceId, actorId: userId, revokedSerials: ['0a1b', '0c'] },
        {
          ...base,
          ...deviceRecord,
          activity_id: 7,
          type_uid: 300407,
          actor: { user: { uid: userId } },
          message: `device ${deviceId} unenrolled`,
          unmapped: { revokedSerials: ['0a1b', '0c'] },
        },
        { statusId: 1, reason: null, deviceUid: deviceId },
      ],
      [
        'a renewed device certificate: Update, by the device itself',
        'dev.latchkey.device.certificate_renewed.v1',
        {
          tenantId,
          deviceId,
          actorId: `device:${deviceId}`,
          previousSerial: '0a',
          certificateSerial: '0b',
          notAfter: '2027-01-01T00:00:00.000Z',
          deviceKeyThumbprint: 'x',
          keyChanged: true,
        },
        {
          ...base,
          ...deviceRecord,
          activity_id: 3,
          type_uid: 300403,
          actor: { user: { uid: `device:${deviceId}` } },
          message: `device ${deviceId} certificate renewed`,
          unmapped: {
            previousSerial: '0a',
            certificateSerial: '0b',
            notAfter: '2027-01-01T00:00:00.000Z',
            deviceKeyThumbprint: 'x',
            keyChanged: true,
          },
        },
        { statusId: 1, reason: null, deviceUid: deviceId },
      ],
    ];

    it.each(cases)('maps %s', (_name, type, data, expected, facets) => {
      const event = eventOf(type, data);
      const record = toOcsf(event, 7n);
      // Every attribute of the record, so that a field lost (or a fallback to the generic
      // Base Event mapping) fails here.
      expect(record).toEqual({
        ...expected,
        time: event.time.getTime(),
        metadata: expect.objectContaining({ event_code: type, sequence: 7 }),
      });
      expect(facetsOf(event, record)).toMatchObject({
        classUid: 3004,
        activityId: expected.activity_id,
        userUid: null,
        credentialUid: null,
        ...facets,
      });
    });
  });
});

/** The options of every `reason` enum in the catalogue's event schemas (optional or not). */
function catalogueReasons(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const [type, def] of EVENT_CATALOGUE) {
    const shape = (def.schema as unknown as { shape?: Record<string, z.ZodTypeAny> }).shape;
    let reason = shape?.reason;
    while (reason instanceof z.ZodOptional || reason instanceof z.ZodNullable)
      reason = reason.unwrap() as z.ZodTypeAny;
    if (reason instanceof z.ZodEnum) found.set(type, [...(reason.options as string[])]);
  }
  return found;
}

describe('failure reasons (a fixed vocabulary a SIEM can group by)', () => {
  it('finds the reason enums of the catalogue’s failure events', () => {
    expect([...catalogueReasons().keys()].sort()).toEqual([
      'dev.latchkey.auth.sign_in.failed.v1',
      'dev.latchkey.credential.provisioning_failed.v1',
      'dev.latchkey.device.registration_failed.v1',
    ]);
  });

  it.each([...catalogueReasons()])('maps every reason of %s to a code', (_type, reasons) => {
    for (const reason of reasons) {
      const code = failureReason(reason);
      expect({ reason, code }).toEqual({
        reason,
        code: expect.stringMatching(/^[A-Z][A-Z0-9_]*$/),
      });
      expect({ reason, code }).not.toEqual({ reason, code: 'OTHER' });
      expect(FAILURE_CODE_VOCABULARY).toContain(code);
    }
  });

  it('maps a reason the catalogue does not have to OTHER', () => {
    expect(failureReason('made_up')).toBe('OTHER');
    expect(failureReason('toString')).toBe('OTHER');
    expect(failureReason(42)).toBe('OTHER');
  });
});
