/**
 * Transactional outbox. A state change and its event are written in the same
 * database transaction (`outboxRecord`); the relay publishes unpublished rows
 * in id order and marks them, so a broker outage delays events and loses none.
 */
import type { DomainEvent } from '../catalogue/domain-event';
import type { EventPublisher } from '../kafka/kafka-event-bus';

/** The row written with a state change (the Prisma `OutboxEvent` model's fields). */
export interface OutboxRecord {
  eventId: string;
  type: string;
  source: string;
  subject: string;
  tenantId: string;
  time: Date;
  data: object;
  traceparent: string | null;
  tracestate: string | null;
}

export function outboxRecord(event: DomainEvent): OutboxRecord {
  return {
    eventId: event.id,
    type: event.type,
    source: event.source,
    subject: event.subject,
    tenantId: event.tenantId,
    time: event.time,
    data: event.data as object,
    traceparent: event.traceparent ?? null,
    tracestate: event.tracestate ?? null,
  };
}

interface OutboxRow {
  id: bigint;
  event_id: string;
  type: string;
  source: string;
  subject: string;
  tenant_id: string;
  time: Date;
  data: unknown;
  traceparent: string | null;
  tracestate: string | null;
}

/** The raw-SQL surface of a Prisma client that the relay needs. */
export interface SqlTransaction {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
}
export interface OutboxDatabase extends SqlTransaction {
  $transaction<R>(
    fn: (tx: SqlTransaction) => Promise<R>,
    options?: { maxWait?: number; timeout?: number },
  ): Promise<R>;
}

export interface OutboxRelayOptions {
  batchSize?: number;
  /** Poll interval when idle; `notify()` wakes the relay sooner. */
  idleMs?: number;
  /**
   * After a `notify()`, wait this long before draining (default 20 ms), so that
   * events committed meanwhile go out in the same batch: under load, one
   * transaction and one Kafka request carry many events instead of one each.
   */
  lingerMs?: number;
  maxBackoffMs?: number;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

export class OutboxRelay {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private failures = 0;
  private readonly batchSize: number;
  private readonly idleMs: number;
  private readonly lingerMs: number;
  /** A notify() came since the last drain began (the drain may have missed its event). */
  private notified = false;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly db: OutboxDatabase,
    private readonly publisher: EventPublisher,
    private readonly options: OutboxRelayOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.idleMs = options.idleMs ?? 500;
    this.lingerMs = options.lingerMs ?? 20;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
  }

  /**
   * Publishes one batch. Only one relay per database works at a time (an
   * advisory lock), which keeps the publish order equal to the commit order
   * of ids even with several replicas. Returns the number of events sent.
   */
  async drainOnce(): Promise<number> {
    return this.db.$transaction(
      async (tx) => {
        const [lock] = await tx.$queryRawUnsafe<{ locked: boolean }[]>(
          `SELECT pg_try_advisory_xact_lock(hashtext('latchkey.outbox_relay')) AS locked`,
        );
        if (!lock?.locked) return 0;
        const rows = await tx.$queryRawUnsafe<OutboxRow[]>(
          `SELECT id, event_id, type, source, subject, tenant_id, time, data, traceparent, tracestate
             FROM outbox_events WHERE published_at IS NULL ORDER BY id LIMIT $1`,
          this.batchSize,
        );
        if (!rows.length) return 0;
        await this.publisher.publish(
          rows.map((r) => ({
            id: r.event_id,
            type: r.type,
            source: r.source,
            subject: r.subject,
            tenantId: r.tenant_id,
            time: r.time,
            data: r.data,
            ...(r.traceparent ? { traceparent: r.traceparent } : {}),
            ...(r.tracestate ? { tracestate: r.tracestate } : {}),
          })),
        );
        await tx.$executeRawUnsafe(
          `UPDATE outbox_events SET published_at = now(), attempts = attempts + 1, last_error = NULL
            WHERE id = ANY($1::bigint[])`,
          rows.map((r) => r.id.toString()),
        );
        return rows.length;
      },
      { maxWait: 5000, timeout: 60000 },
    );
  }

  /** Number of events waiting to be published (for metrics and readiness detail). */
  async backlog(): Promise<number> {
    const [row] = await this.db.$queryRawUnsafe<{ n: bigint }[]>(
      `SELECT count(*) AS n FROM outbox_events WHERE published_at IS NULL`,
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Seconds the oldest unpublished event has waited (0 when none waits), by the
   * database's clock. Cheap: the first row of the partial index of unpublished ids.
   */
  async oldestUnpublishedAgeSeconds(): Promise<number> {
    const [row] = await this.db.$queryRawUnsafe<{ age: number }[]>(
      `SELECT GREATEST(EXTRACT(EPOCH FROM now() - created_at), 0)::float8 AS age
         FROM outbox_events WHERE published_at IS NULL ORDER BY id LIMIT 1`,
    );
    return Number(row?.age ?? 0);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Wakes the relay now, e.g. right after a commit that wrote an event. */
  notify(): void {
    this.notified = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Sleeps `ms`; true when `notify()` (or `stop()`) cut it short. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), ms);
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(woken);
      };
      this.wake = () => done(true);
    });
  }

  private async recordFailure(err: unknown): Promise<void> {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.options.logger?.warn(
      { err: message, failures: this.failures },
      'outbox relay failed; will retry',
    );
    await this.db
      .$executeRawUnsafe(
        `UPDATE outbox_events SET attempts = attempts + 1, last_error = $1
          WHERE id = (SELECT min(id) FROM outbox_events WHERE published_at IS NULL)`,
        message.slice(0, 1000),
      )
      .catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        this.notified = false;
        const sent = await this.drainOnce();
        if (this.failures)
          this.options.logger?.info({ failures: this.failures }, 'outbox relay recovered');
        this.failures = 0;
        if (sent === this.batchSize) continue;
        const woken = this.notified || (await this.sleep(this.idleMs));
        if (woken && this.running && this.lingerMs > 0)
          await new Promise((resolve) => setTimeout(resolve, this.lingerMs));
      } catch (err) {
        this.failures++;
        await this.recordFailure(err);
        // The whole back-off: notify() (a new event) does not cut it short, stop() does.
        const until =
          Date.now() + Math.min(200 * 2 ** Math.min(this.failures, 10), this.maxBackoffMs);
        while (this.running && Date.now() < until) await this.sleep(until - Date.now());
      }
    }
  }
}
