/**
 * Test harness for the audit service: a scratch database, topics of its own, a
 * token issuer the instances trust, extra audit instances (killable), and a
 * producer of domain events (well-formed or not) straight onto Kafka.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { encodeEvent, eventDefinition, type DomainEvent, KafkaEventBus } from '@latchkey/events';
import {
  grpcClient,
  KAFKA_BROKERS,
  launcher,
  type Metadata,
  ScratchDatabase,
  startExtraService,
  type ExtraService,
  TestTokenIssuer,
  TEST_PROFILE,
  type UnaryClient,
} from '@latchkey/testing';

export class AuditHarness {
  readonly id = randomBytes(4).toString('hex');
  readonly topics: string[];
  readonly streamTopic: string;
  readonly dlqTopic: string;
  readonly group: string;
  readonly instances: ExtraService[] = [];
  db!: ScratchDatabase;
  issuer!: TestTokenIssuer;
  bus!: KafkaEventBus;

  constructor(
    readonly name: string,
    { topicCount = 1 } = {},
  ) {
    const base = `test.audit.${name}.${this.id}`;
    this.topics = Array.from({ length: topicCount }, (_, i) => `${base}.domain${i}`);
    this.streamTopic = `${base}.stream`;
    this.dlqTopic = `${base}.dlq`;
    this.group = `test-audit-${name}-${this.id}`;
  }

  async setUp(): Promise<void> {
    // Unique per run: suites of other profiles (other engineers, CI) may run the same files.
    const prefix = launcher.catalog.profiles[TEST_PROFILE]!.dbPrefix;
    this.db = await ScratchDatabase.create(`${prefix}scratch_${this.name}_${this.id}`, 'audit');
    this.issuer = await TestTokenIssuer.start();
    this.bus = new KafkaEventBus({ brokers: [KAFKA_BROKERS], clientId: `test-${this.name}` });
    await this.bus.ensureTopics([...this.topics, this.streamTopic, this.dlqTopic]);
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.kill()));
    await this.bus?.close();
    await this.issuer?.close();
    await this.db?.drop();
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.issuer.env(),
      DATABASE_URL: `postgresql://postgres@127.0.0.1:5432/${this.db.name}`,
      AUDIT_TOPICS: this.topics.join(','),
      AUDIT_STREAM_TOPIC: this.streamTopic,
      AUDIT_DLQ_TOPIC: this.dlqTopic,
      AUDIT_CONSUMER_GROUP: this.group,
      AUDIT_CHECKPOINT_EVERY: '25',
      AUDIT_CHECKPOINT_INTERVAL_MS: '2000',
      ...extra,
    };
  }

  async startAudit(name: string, extra: Record<string, string> = {}): Promise<ExtraService> {
    const instance = await startExtraService('audit', {
      name: `${this.name}-${name}-${this.id}`,
      env: this.env(extra),
    });
    this.instances.push(instance);
    return instance;
  }

  client(instance: ExtraService): UnaryClient {
    return grpcClient('audit', instance.grpc);
  }

  token(tenantId: string, roles: ('admin' | 'soc' | 'user' | 'operator')[] = ['soc']) {
    return this.issuer.token({ tenantId, roles });
  }

  metadata(
    tenantId: string,
    roles: ('admin' | 'soc' | 'user' | 'operator')[] = ['soc'],
  ): Promise<Metadata> {
    return this.issuer.metadata({ tenantId, roles });
  }

  /** A valid dev.latchkey.device.registered.v1 event. */
  deviceRegistered(
    tenantId: string,
    overrides: Partial<DomainEvent> = {},
    data: object = {},
  ): DomainEvent {
    const def = eventDefinition('dev.latchkey.device.registered.v1')!;
    const deviceId = randomUUID();
    return {
      id: randomUUID(),
      type: def.type,
      source: def.source,
      subject: `devices/${deviceId}`,
      tenantId,
      time: new Date(),
      data: {
        tenantId,
        deviceId,
        displayName: `laptop-${deviceId.slice(0, 8)}`,
        osType: 'linux',
        osVersion: '6.1',
        joinType: 'registered',
        attestationLevel: 'tpm',
        ...data,
      },
      traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
      ...overrides,
    };
  }

  /** A valid dev.latchkey.auth.sign_in.failed.v1 event. */
  signInFailed(tenantId: string, reason = 'bad_otp', userId = randomUUID()): DomainEvent {
    const def = eventDefinition('dev.latchkey.auth.sign_in.failed.v1')!;
    return {
      id: randomUUID(),
      type: def.type,
      source: def.source,
      subject: `users/${userId}`,
      tenantId,
      time: new Date(),
      data: { tenantId, userId, username: 'alice', stage: 'otp', reason, sourceIp: '192.0.2.7' },
    };
  }

  /** Produces events onto the harness's domain topics (round-robin over topics, key = tenant). */
  async produce(events: DomainEvent[], topicIndex?: (i: number) => number): Promise<void> {
    const byTopic = new Map<string, ReturnType<typeof encodeEvent>[]>();
    events.forEach((e, i) => {
      const topic = this.topics[(topicIndex ? topicIndex(i) : 0) % this.topics.length]!;
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), encodeEvent(e)]);
    });
    for (const [topic, messages] of byTopic) {
      for (let i = 0; i < messages.length; i += 500) {
        await this.bus.publishRaw(
          topic,
          messages.slice(i, i + 500).map((m) => ({
            key: m.key,
            value: m.value,
            headers: m.headers as Record<string, string>,
          })),
        );
      }
    }
  }

  async produceRaw(message: { key: string; value: string; headers: Record<string, string> }) {
    await this.bus.publishRaw(this.topics[0]!, [message]);
  }

  async count(tenantId?: string): Promise<number> {
    const [row] = await this.db.$queryRawUnsafe<{ n: string }[]>(
      `SELECT count(*)::text AS n FROM audit_records ${tenantId ? 'WHERE tenant_id = $1' : ''}`,
      ...(tenantId ? [tenantId] : []),
    );
    return Number(row!.n);
  }

  async records(tenantId: string) {
    return this.db.$queryRawUnsafe<
      {
        seq: string;
        prev_hash: string;
        hash: string;
        record: Record<string, unknown>;
        event_id: string;
      }[]
    >(
      `SELECT seq::text, prev_hash, hash, record, event_id::text FROM audit_records
        WHERE tenant_id = $1 ORDER BY audit_records.seq`,
      tenantId,
    );
  }

  /** Reads every message of a topic from the beginning (until idle). */
  async readTopic(topic: string, { idleMs = 3000 } = {}) {
    const kafka = new Kafka({
      brokers: [KAFKA_BROKERS],
      clientId: 'test-reader',
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: `reader-${randomUUID()}` });
    const out: {
      key: string;
      value: string;
      headers: Record<string, string>;
      partition: number;
    }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let last = Date.now();
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        last = Date.now();
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        out.push({ key: String(message.key), value: String(message.value), headers, partition });
      },
    });
    const started = Date.now();
    while (Date.now() - last < idleMs || (out.length === 0 && Date.now() - started < 15000)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    await consumer.disconnect();
    return out;
  }
}
