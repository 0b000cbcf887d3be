import { randomUUID } from 'node:crypto';
import { DeviceRegistered } from '../catalogue/catalogue';
import { createEvent, EventSchemaError } from '../catalogue/domain-event';
import { decodeEvent, encodeEvent, type KafkaRecord, MalformedEventError } from './codec';

const tenantId = randomUUID();
const data = {
  tenantId,
  deviceId: randomUUID(),
  displayName: 'Laptop',
  osType: 'linux',
  osVersion: '6.1',
  joinType: 'registered' as const,
  attestationLevel: 'none' as const,
};

function encoded(): KafkaRecord & { headers: Record<string, string> } {
  const r = encodeEvent(createEvent(DeviceRegistered, tenantId, data));
  return { ...r, headers: { ...(r.headers as Record<string, string>) } };
}

function reasonOf(record: KafkaRecord): string {
  try {
    decodeEvent(record);
  } catch (err) {
    if (err instanceof MalformedEventError) return err.reason;
    throw err;
  }
  throw new Error('decoded without error');
}

describe('CloudEvents binary-mode codec', () => {
  it('puts attributes in ce_ headers, data in the value and the tenant in the key', () => {
    const r = encoded();
    expect(r.key).toBe(tenantId);
    expect(JSON.parse(r.value as string)).toEqual(data);
    expect(r.headers).toMatchObject({
      ce_specversion: '1.0',
      ce_type: 'dev.latchkey.device.registered.v1',
      ce_source: '/latchkey/registration',
      ce_subject: `devices/${data.deviceId}`,
      ce_tenantid: tenantId,
      'content-type': 'application/json',
    });
    expect(r.headers.ce_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(r.headers.ce_time).toISOString()).toBe(r.headers.ce_time);
  });

  it('decodes what it encodes, including Buffer headers as kafkajs delivers them', () => {
    const r = encoded();
    const asBuffers: KafkaRecord = {
      key: Buffer.from(r.key as string),
      value: Buffer.from(r.value as string),
      headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, Buffer.from(v)])),
    };
    const e = decodeEvent(asBuffers);
    expect(e.id).toBe(r.headers.ce_id);
    expect(e.data).toEqual(data);
    expect(e.time.toISOString()).toBe(r.headers.ce_time);
  });

  it.each([
    ['MISSING_ATTRIBUTE', (r: ReturnType<typeof encoded>) => delete r.headers.ce_id],
    [
      'UNSUPPORTED_SPECVERSION',
      (r: ReturnType<typeof encoded>) => (r.headers.ce_specversion = '0.3'),
    ],
    ['INVALID_TIME', (r: ReturnType<typeof encoded>) => (r.headers.ce_time = 'yesterday')],
    [
      'UNSUPPORTED_CONTENT_TYPE',
      (r: ReturnType<typeof encoded>) => (r.headers['content-type'] = 'text/plain'),
    ],
    [
      'UNKNOWN_EVENT_TYPE',
      (r: ReturnType<typeof encoded>) => (r.headers.ce_type = 'dev.latchkey.nope.v1'),
    ],
    ['INVALID_JSON', (r: ReturnType<typeof encoded>) => (r.value = '{not json')],
    [
      'SCHEMA_VIOLATION',
      (r: ReturnType<typeof encoded>) => (r.value = JSON.stringify({ ...data, joinType: 'x' })),
    ],
    ['KEY_MISMATCH', (r: ReturnType<typeof encoded>) => (r.key = randomUUID())],
  ])('rejects a record with reason %s', (reason, spoil) => {
    const r = encoded();
    spoil(r);
    expect(reasonOf(r)).toBe(reason);
  });

  it('refuses to create an event whose data does not match the catalogue', () => {
    expect(() =>
      createEvent(DeviceRegistered, tenantId, {
        ...data,
        extra: 'field',
      } as unknown as typeof data),
    ).toThrow(EventSchemaError);
  });
});
