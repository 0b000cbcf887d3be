/**
 * The one place latchkey talks to Kafka. kafkajs is unmaintained, so it stays
 * behind these interfaces: EventPublisher (used by the outbox relay) and
 * BatchEventConsumer (used by consumers).
 */
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  logLevel,
  type Producer,
} from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { SpanStatusCode } from '@opentelemetry/api';
import type { DomainEvent } from '../catalogue/domain-event';
import { eventDefinition } from '../catalogue/catalogue';
import {
  decodeEvent,
  type DecodedEvent,
  encodeEvent,
  MalformedEventError,
} from '../cloudevents/codec';
import { groupTimeouts, type KafkaSecurityOptions } from './kafka-client-config';
import { contextFromTraceparent, startProcessSpan, startPublishSpan } from './tracing';
import type { Context } from '@opentelemetry/api';

export interface EventPublisher {
  /** Publishes in order; resolves only when every event is acknowledged by the broker. */
  publish(events: readonly DomainEvent[]): Promise<void>;
}

export interface ConsumedEvent extends DecodedEvent {
  topic: string;
  partition: number;
  offset: string;
  /** Trace context of this event's processing span; run work for it inside. */
  traceContext: Context;
}

export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  reason: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** What a handler may report back: events it refuses (sent to the dead-letter topic). */
export interface BatchHandleResult {
  rejected?: { event: ConsumedEvent; reason: string }[];
}

export interface BatchEventConsumerOptions {
  groupId: string;
  topics: readonly string[];
  /**
   * Handles a batch; offsets are committed only after it resolves. Events it returns
   * as `rejected` go to the dead-letter topic with their reason, like malformed ones.
   */
  handle(events: ConsumedEvent[]): Promise<void | BatchHandleResult>;
  /** Where malformed records go, with their reason; committed with the batch. */
  deadLetterTopic: string;
  fromBeginning?: boolean;
  /** Throughput tuning (kafkajs defaults when unset). */
  partitionsConsumedConcurrently?: number;
  maxBytesPerPartition?: number;
  maxBytes?: number;
  maxWaitTimeInMs?: number;
  /**
   * One CONSUMER span per event, continuing each producer's trace (the default), or,
   * when false, one span per batch (high-volume consumers such as audit: a span per
   * event costs more than the rest of their per-event work).
   */
  spanPerEvent?: boolean;
}

export interface KafkaEventBusOptions extends Partial<KafkaSecurityOptions> {
  brokers: string[];
  clientId: string;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  numPartitions?: number;
  replicationFactor?: number;
  /** Session timeout of startConsumer's groups (KAFKA_SESSION_TIMEOUT_MS; default 30 s). */
  sessionTimeoutMs?: number;
  /** Session timeout of startListener's groups (KAFKA_LISTENER_SESSION_TIMEOUT_MS; default 10 s). */
  listenerSessionTimeoutMs?: number;
}

export class KafkaEventBus implements EventPublisher {
  private readonly kafka: Kafka;
  private producer?: Producer;
  private connecting?: Promise<Producer>;
  private readonly consumers: Consumer[] = [];

  constructor(private readonly options: KafkaEventBusOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      ...(options.ssl ? { ssl: options.ssl } : {}),
      ...(options.sasl ? { sasl: options.sasl } : {}),
      connectionTimeout: 3000,
      requestTimeout: 10000,
      retry: { initialRetryTime: 200, retries: 3, maxRetryTime: 3000 },
      logLevel: logLevel.NOTHING,
    });
  }

  /** Creates the topics when missing (idempotent). */
  async ensureTopics(topics: readonly string[]): Promise<void> {
    const admin: Admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: this.options.numPartitions ?? 3,
            replicationFactor: this.options.replicationFactor ?? 1,
          })),
        });
      }
    } finally {
      await admin.disconnect();
    }
  }

  private async connectedProducer(): Promise<Producer> {
    if (this.producer) return this.producer;
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      try {
        await producer.connect();
      } catch (err) {
        this.connecting = undefined;
        await producer.disconnect().catch(() => undefined);
        throw err;
      }
      this.producer = producer;
      return producer;
    })();
    return this.connecting;
  }

  async publish(events: readonly DomainEvent[]): Promise<void> {
    if (!events.length) return;
    const producer = await this.connectedProducer();
    const byTopic = new Map<string, ReturnType<typeof encodeEvent>[]>();
    const spans = events.map((event) => {
      const def = eventDefinition(event.type);
      if (!def) throw new Error(`event type ${event.type} is not in the catalogue`);
      const parent = contextFromTraceparent(event.traceparent, event.tracestate);
      const { span, traceHeaders } = startPublishSpan(def.topic, event.type, parent);
      const record = encodeEvent({ ...event, ...traceHeaders });
      const list = byTopic.get(def.topic) ?? [];
      list.push(record);
      byTopic.set(def.topic, list);
      return span;
    });
    try {
      await producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (err) {
      for (const span of spans) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        span.end();
      }
      throw err;
    }
    for (const span of spans) span.end();
  }

  /** Publishes raw records (used for the audit stream and the DLQ). */
  async publishRaw(
    topic: string,
    messages: {
      key: string | Buffer | null;
      value: string | Buffer | null;
      headers: Record<string, string>;
    }[],
  ): Promise<void> {
    if (!messages.length) return;
    const producer = await this.connectedProducer();
    await producer.send({ topic, messages });
  }

  async startConsumer(options: BatchEventConsumerOptions): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: options.groupId,
      retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 5000 },
      ...groupTimeouts(this.options.sessionTimeoutMs ?? 30_000),
      ...(options.maxBytesPerPartition
        ? { maxBytesPerPartition: options.maxBytesPerPartition }
        : {}),
      ...(options.maxBytes ? { maxBytes: options.maxBytes } : {}),
      ...(options.maxWaitTimeInMs ? { maxWaitTimeInMs: options.maxWaitTimeInMs } : {}),
    });
    this.consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({
      topics: [...options.topics],
      fromBeginning: options.fromBeginning ?? true,
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
      eachBatch: (payload) => this.handleBatch(consumer, options, payload),
    });
  }

  private async handleBatch(
    consumer: Consumer,
    options: BatchEventConsumerOptions,
    { batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload,
  ): Promise<void> {
    if (!isRunning() || isStale() || !batch.messages.length) return;
    const good: ConsumedEvent[] = [];
    const bad: DeadLetter[] = [];
    const spans = [];
    const perEvent = options.spanPerEvent ?? true;
    const batchSpan = perEvent
      ? undefined
      : startProcessSpan(batch.topic, '(batch)', `${batch.partition}/${batch.messages[0]!.offset}`);
    if (batchSpan) {
      batchSpan.span.setAttribute('messaging.batch.message_count', batch.messages.length);
      spans.push(batchSpan.span);
    }
    const headersOf = (raw: Record<string, Buffer | string | undefined>) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(raw)) if (v !== undefined) headers[k] = v.toString();
      return headers;
    };
    for (const message of batch.messages) {
      const record = {
        key: message.key,
        value: message.value,
        headers: (message.headers ?? {}) as Record<string, Buffer | string | undefined>,
      };
      try {
        const decoded = decodeEvent(record);
        let ctx = batchSpan?.ctx;
        if (!ctx) {
          const started = startProcessSpan(
            batch.topic,
            decoded.type,
            decoded.id,
            decoded.traceparent,
            decoded.tracestate,
          );
          spans.push(started.span);
          ctx = started.ctx;
        }
        good.push({
          ...decoded,
          topic: batch.topic,
          partition: batch.partition,
          offset: message.offset,
          traceContext: ctx,
        });
      } catch (err) {
        const reason =
          err instanceof MalformedEventError ? err.message : `UNDECODABLE: ${String(err)}`;
        const headers = headersOf(record.headers);
        bad.push({
          topic: batch.topic,
          partition: batch.partition,
          offset: message.offset,
          reason,
          key: message.key,
          value: message.value,
          headers,
        });
      }
    }
    try {
      const result = good.length ? await options.handle(good) : undefined;
      if (result?.rejected?.length) {
        const byOffset = new Map(batch.messages.map((m) => [m.offset, m]));
        for (const { event, reason } of result.rejected) {
          const message = byOffset.get(event.offset)!;
          bad.push({
            topic: batch.topic,
            partition: batch.partition,
            offset: event.offset,
            reason,
            key: message.key,
            value: message.value,
            headers: headersOf(
              (message.headers ?? {}) as Record<string, Buffer | string | undefined>,
            ),
          });
        }
      }
      if (bad.length) {
        await this.publishRaw(
          options.deadLetterTopic,
          bad.map((d) => ({
            key: d.key,
            value: d.value,
            headers: {
              ...d.headers,
              latchkey_dlq_reason: d.reason,
              latchkey_dlq_topic: d.topic,
              latchkey_dlq_partition: String(d.partition),
              latchkey_dlq_offset: d.offset,
            },
          })),
        );
        this.options.logger?.warn(
          { count: bad.length, reasons: bad.map((d) => d.reason) },
          'malformed events sent to the dead-letter topic',
        );
      }
    } catch (err) {
      for (const span of spans) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        span.end();
      }
      throw err; // not committed: kafkajs retries the batch, handlers are idempotent
    }
    for (const span of spans) span.end();
    const last = batch.messages[batch.messages.length - 1]!.offset;
    resolveOffset(last);
    await consumer.commitOffsets([
      { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
    ]);
    await heartbeat();
  }

  /**
   * A listener that sees every event of `topics` from now on, on this instance
   * (its own consumer group, `groupIdPrefix` + a random suffix): for caches
   * that must drop entries when an event says they changed. `onEvent` gets
   * null for a message it cannot decode. `onLive(true)` once the listener
   * receives events, `onLive(false)` when it stops, crashes or rebalances —
   * a cache must not serve entries while the listener is not live.
   */
  async startListener(options: {
    groupIdPrefix: string;
    topics: readonly string[];
    onEvent: (event: DecodedEvent | null) => void;
    onLive: (live: boolean) => void;
  }): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: `${options.groupIdPrefix}-${randomUUID()}`,
      retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 5000 },
      ...groupTimeouts(this.options.listenerSessionTimeoutMs ?? 10_000),
      maxWaitTimeInMs: 100,
    });
    this.consumers.push(consumer);
    const { GROUP_JOIN, CRASH, DISCONNECT, STOP, REBALANCING } = consumer.events;
    consumer.on(GROUP_JOIN, () => options.onLive(true));
    for (const e of [CRASH, DISCONNECT, STOP, REBALANCING])
      consumer.on(e, () => options.onLive(false));
    await consumer.connect();
    await consumer.subscribe({ topics: [...options.topics], fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        let event: DecodedEvent | null = null;
        try {
          event = decodeEvent({
            key: message.key,
            value: message.value,
            headers: (message.headers ?? {}) as Record<string, Buffer | string | undefined>,
          });
        } catch {
          event = null;
        }
        options.onEvent(event);
      },
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.consumers.map((c) => c.disconnect()));
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
    this.connecting = undefined;
  }
}
