/**
 * Every OCSF record audit produces, checked against OCSF 1.5.0: the base event's
 * required attributes, each class's own required attributes and activity ids,
 * type_uid, and the objects' own requirements (metadata.product.vendor_name,
 * user/entity identified, device.type_id, os.name + type_id).
 */
import { randomUUID } from 'node:crypto';
import { EVENT_CATALOGUE, type DomainEvent } from '@latchkey/events';
import { MAPPED_EVENT_TYPES, OCSF_VERSION, type OcsfRecord, toOcsf } from './ocsf';

const tenantId = randomUUID();
const userId = randomUUID();
const deviceId = randomUUID();
const credentialId = 'A'.repeat(43);
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
};

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

function eventOf(type: string): DomainEvent {
  const def = EVENT_CATALOGUE.get(type)!;
  const data = def.schema.parse(SAMPLES[type]);
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

  describe.each(domainTypes.filter((t) => SAMPLES[t]))('%s', (type) => {
    const event = eventOf(type);
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
});
