/**
 * The walking skeleton's thread: RegisterDevice on registration → outbox →
 * Kafka (CloudEvents) → audit consumer → audit record → QueryAuditEvents.
 *
 * Registration needs a real enrollment authorization: each tenant is announced
 * on Kafka the way auth does it (tenant.created, which makes the tenant's device
 * CA) and a join token is made through registration's admin API. The admin
 * token comes from a test issuer trusted by a registration instance of this
 * suite (auth's own sign-in needs a seeded admin and TOTP steps).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import {
  eventually,
  grpcClient,
  Metadata,
  newDeviceMaterial,
  OTLP_PORT,
  readCollectedSpans,
  reasonOf,
  SPANS_FILE,
  startExtraService,
  startKafkaBroker,
  stopKafkaBroker,
  TestTokenIssuer,
  type ExtraService,
  type UnaryClient,
} from '@latchkey/testing';
import {
  closeBus,
  joinToken,
  newTenant,
  type RegistrationUnderTest,
  startRegistration,
} from './support';

interface ProtoRecord {
  eventId: string;
  eventType: string;
  subject: string;
  traceId: string;
  seq: string;
  dataJson: string;
  recordJson: string;
}

describe('a registered device reaches the audit trail', () => {
  let reg: RegistrationUnderTest;
  let registration: UnaryClient;
  let audit: UnaryClient;
  // The audit query API wants an admin or SOC access token. Until auth issues them in
  // this suite, a second audit instance reads the same audit database and trusts a
  // test issuer; it consumes nothing (its topic is unused), the suite's audit does.
  let issuer: TestTokenIssuer;
  let auditReader: ExtraService;

  beforeAll(async () => {
    reg = await startRegistration('device-event-thread', {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${OTLP_PORT}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    registration = reg.client;
    issuer = await TestTokenIssuer.start();
    auditReader = await startExtraService('audit', {
      name: 'thread-reader',
      env: {
        ...issuer.env(),
        AUDIT_TOPICS: 'latchkey.test.thread-reader.unused',
        AUDIT_STREAM_ENABLED: 'false',
        AUDIT_CONSUMER_GROUP: `thread-reader-${randomUUID()}`,
      },
    });
    audit = grpcClient('audit', auditReader.grpc);
  }, 120_000);
  afterAll(async () => {
    audit.close();
    await closeBus();
    await reg?.close();
    await auditReader?.stop();
    await issuer?.close();
  });

  async function register(tenantId: string, metadata?: Metadata) {
    const material = await newDeviceMaterial('laptop-1');
    const { token } = await joinToken(reg, tenantId);
    const res = await registration.registerDevice!(
      {
        tenantId,
        joinToken: token,
        csrPem: material.csrPem,
        transportPublicKey: material.transportPublicKey,
        displayName: 'Laptop 1',
        osType: 'linux',
        osVersion: '6.1',
        joinType: 'JOIN_TYPE_REGISTERED',
      },
      metadata,
    );
    return (res.device as { deviceId: string }).deviceId;
  }

  async function records(tenantId: string): Promise<ProtoRecord[]> {
    const res = await audit.queryAuditEvents!(
      { tenantId, pageSize: 100 },
      await issuer.metadata({ tenantId, roles: ['soc'] }),
    );
    return res.records as ProtoRecord[];
  }

  /** The tenant's audit records of device events (auth's tenant.created is audited too). */
  async function deviceRecords(tenantId: string): Promise<ProtoRecord[]> {
    return (await records(tenantId)).filter((r) => r.eventType.startsWith('dev.latchkey.device.'));
  }

  it('stores the device.registered event as an audit record found through QueryAuditEvents', async () => {
    const tenantId = await newTenant(reg);
    const deviceId = await register(tenantId);
    const found = await eventually(
      async () => {
        const list = await deviceRecords(tenantId);
        return list.length ? list : undefined;
      },
      { what: 'the audit record' },
    );
    expect(found).toHaveLength(1);
    const record = found[0]!;
    expect(record.eventType).toBe('dev.latchkey.device.registered.v1');
    expect(record.subject).toBe(`devices/${deviceId}`);
    // The tenant's chain also holds its tenant.created record (from auth's topic).
    expect(['1', '2']).toContain(record.seq);
    expect(JSON.parse(record.dataJson)).toMatchObject({
      tenantId,
      deviceId,
      joinType: 'registered',
    });
    const ocsf = JSON.parse(record.recordJson) as Record<string, unknown>;
    // Entity Management: Enroll.
    expect(ocsf).toMatchObject({ class_uid: 3004, activity_id: 6, type_uid: 300406 });
    expect((ocsf.metadata as { uid: string }).uid).toBe(record.eventId);
  });

  it("keeps tenants apart: one tenant never sees another tenant's records", async () => {
    const a = await newTenant(reg);
    const b = randomUUID();
    await register(a);
    await eventually(async () => ((await deviceRecords(a)).length ? true : undefined), {
      what: 'record of a',
    });
    expect(await records(b)).toEqual([]);
  });

  it('rejects a malformed registration with INVALID_ARGUMENT and a reason, storing nothing', async () => {
    const tenantId = randomUUID();
    const err = await registration.registerDevice!({
      tenantId,
      joinToken: 'x',
      csrPem: 'not a csr',
      transportPublicKey: 'not a key',
      displayName: '',
      osType: 'linux',
      osVersion: '1',
      joinType: 'JOIN_TYPE_UNSPECIFIED',
    }).catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(status.INVALID_ARGUMENT);
    expect(reasonOf(err)).toBe('INVALID_DEVICE_REGISTRATION');
    expect((err as Error).message).toMatch(/csrPem/);
    // Nothing was written, so nothing can reach audit.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await records(tenantId)).toEqual([]);
  });

  it('carries one trace id from the gRPC call through Kafka to the audit consumer', async () => {
    const traceId = randomBytes(16).toString('hex');
    const metadata = new Metadata();
    metadata.set('traceparent', `00-${traceId}-${randomBytes(8).toString('hex')}-01`);
    const tenantId = await newTenant(reg);
    await register(tenantId, metadata);
    const [record] = await eventually(
      async () => {
        const list = await deviceRecords(tenantId);
        return list.length ? list : undefined;
      },
      { what: 'the audit record' },
    );
    expect(record!.traceId).toBe(traceId);
    expect(JSON.parse(record!.recordJson).metadata.correlation_uid).toBe(traceId);
    const spans = await eventually(
      async () => {
        const mine = readCollectedSpans(SPANS_FILE).filter((s) => s.traceId === traceId);
        const has = (service: string, kind: number) =>
          mine.some((s) => s.service === service && s.kind === kind);
        return has('latchkey-registration', 2) &&
          has('latchkey-registration', 4) &&
          has('latchkey-audit', 5)
          ? mine
          : undefined;
      },
      { what: 'server, producer and consumer spans of one trace' },
    );
    const server = spans.find((s) => s.service === 'latchkey-registration' && s.kind === 2)!;
    expect(server.name).toBe('grpc.latchkey.registration.v1.RegistrationService/RegisterDevice');
    const producer = spans.find((s) => s.kind === 4)!;
    const consumer = spans.find((s) => s.service === 'latchkey-audit' && s.kind === 5)!;
    expect(producer.name).toBe('latchkey.device.v1 publish');
    expect(consumer.parentSpanId).toBe(producer.spanId);
  });

  describe('with the Kafka broker stopped', () => {
    afterAll(async () => {
      await startKafkaBroker(); // whatever happened, leave the broker running
    });

    it('accepts the registration and delivers exactly one audit record once the broker is back', async () => {
      const tenantId = await newTenant(reg);
      await closeBus(); // the suite's own producer, so that it does not hold the stopped broker
      await stopKafkaBroker();
      const deviceId = await register(tenantId);
      await new Promise((r) => setTimeout(r, 3000));
      expect(await deviceRecords(tenantId)).toEqual([]);
      await startKafkaBroker();
      const found = await eventually(
        async () => {
          const list = await deviceRecords(tenantId);
          return list.length ? list : undefined;
        },
        { what: 'the audit record after the broker came back', timeoutMs: 90000 },
      );
      // Wait for any late duplicate delivery before counting.
      await new Promise((r) => setTimeout(r, 3000));
      const final = await deviceRecords(tenantId);
      expect(final).toHaveLength(1);
      expect(final[0]!.subject).toBe(`devices/${deviceId}`);
      expect(found[0]!.eventId).toBe(final[0]!.eventId);
    });
  });
});
