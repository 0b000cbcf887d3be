/** The outbox relay against a real PostgreSQL database (publisher replaced by a recording fake). */
import { randomUUID } from 'node:crypto';
import { ScratchDatabase } from '@latchkey/testing';
import { DeviceRegistered } from '../catalogue/catalogue';
import { createEvent, type DomainEvent } from '../catalogue/domain-event';
import type { EventPublisher } from '../kafka/kafka-event-bus';
import { Registry } from 'prom-client';
import { type OutboxDatabase, OutboxRelay, outboxRecord } from './outbox';
import { pgOutboxDatabase, TransactionTimeoutError } from './pg-outbox-database';
import { registerOutboxMetrics } from './outbox-metrics';

/** Records what it is asked to publish; fails while `down` is true. */
class RecordingPublisherFake implements EventPublisher {
  published: DomainEvent[] = [];
  down = false;
  delayMs = 0;
  calls = 0;
  async publish(events: readonly DomainEvent[]): Promise<void> {
    this.calls++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.down) throw new Error('broker unavailable (fake)');
    this.published.push(...events);
  }
}

// On a plain pg.Pool (pgOutboxDatabase), as in the services.
describe('OutboxRelay', () => {
  let scratch: ScratchDatabase;
  let db: OutboxDatabase;
  const tenantId = randomUUID();

  beforeAll(async () => {
    scratch = await ScratchDatabase.create('latchkey_test_outbox_relay', 'registration');
    db = pgOutboxDatabase(scratch.pool);
  });
  afterAll(async () => {
    await scratch.drop();
  });
  beforeEach(async () => {
    await scratch.$executeRawUnsafe('TRUNCATE outbox_events RESTART IDENTITY');
  });

  async function write(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = createEvent(DeviceRegistered, tenantId, {
        tenantId,
        deviceId: randomUUID(),
        displayName: `device ${i}`,
        osType: 'linux',
        osVersion: '6',
        joinType: 'registered',
        attestationLevel: 'none',
      });
      const r = outboxRecord(e);
      await db.$executeRawUnsafe(
        `INSERT INTO outbox_events (event_id, type, source, subject, tenant_id, time, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        r.eventId,
        r.type,
        r.source,
        r.subject,
        r.tenantId,
        r.time,
        JSON.stringify(r.data),
      );
      ids.push(e.id);
    }
    return ids;
  }

  it('publishes unpublished rows in id order and marks them published', async () => {
    const ids = await write(5);
    const fake = new RecordingPublisherFake();
    const relay = new OutboxRelay(db, fake, { batchSize: 3 });
    expect(await relay.drainOnce()).toBe(3);
    expect(await relay.drainOnce()).toBe(2);
    expect(await relay.drainOnce()).toBe(0);
    expect(fake.published.map((e) => e.id)).toEqual(ids);
    expect(fake.published[0]!.data).toMatchObject({ displayName: 'device 0' });
    expect(await relay.backlog()).toBe(0);
  });

  it('loses nothing while the publisher fails, and recovers by itself', async () => {
    const ids = await write(4);
    const fake = new RecordingPublisherFake();
    fake.down = true;
    const relay = new OutboxRelay(db, fake, { idleMs: 50, maxBackoffMs: 100 });
    relay.start();
    await new Promise((r) => setTimeout(r, 600));
    expect(fake.published).toEqual([]);
    expect(await relay.backlog()).toBe(4);
    const [row] = await db.$queryRawUnsafe<{ last_error: string; attempts: number }[]>(
      'SELECT last_error, attempts FROM outbox_events ORDER BY id LIMIT 1',
    );
    expect(row!.last_error).toMatch(/broker unavailable/);
    expect(row!.attempts).toBeGreaterThan(0);
    fake.down = false;
    const deadline = Date.now() + 10000;
    while ((await relay.backlog()) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await relay.stop();
    expect(fake.published.map((e) => e.id)).toEqual(ids);
  });

  it('never publishes a row twice when two relays drain the same outbox', async () => {
    const ids = await write(20);
    const fake = new RecordingPublisherFake();
    fake.delayMs = 20;
    const a = new OutboxRelay(db, fake, { batchSize: 5 });
    const b = new OutboxRelay(db, fake, { batchSize: 5 });
    for (let round = 0; round < 20 && (await a.backlog()) > 0; round++) {
      await Promise.all([a.drainOnce(), b.drainOnce()]);
    }
    expect(fake.published.map((e) => e.id)).toEqual(ids);
  });
  it('exports the age of the oldest unpublished event and the backlog, 0 once published', async () => {
    await write(3);
    await db.$executeRawUnsafe(
      `UPDATE outbox_events SET created_at = now() - make_interval(secs => 400 - id)`,
    );
    const registry = new Registry();
    const relay = new OutboxRelay(db, new RecordingPublisherFake(), { batchSize: 2 });
    registerOutboxMetrics(registry, relay);
    const value = async (name: string) => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
      return (metric as { values: { value: number }[] } | undefined)?.values[0]?.value;
    };
    const age = 'latchkey_outbox_oldest_unpublished_age_seconds';
    // The oldest row (id 1) was written 399 s ago.
    expect(await value(age)).toBeGreaterThanOrEqual(399);
    expect(await value(age)).toBeLessThan(420);
    expect(await value('latchkey_outbox_unpublished_events')).toBe(3);
    await relay.drainOnce(); // ids 1 and 2: the oldest waiting is now id 3
    expect(await value(age)).toBeGreaterThanOrEqual(397);
    expect(await value(age)).toBeLessThan(399);
    await relay.drainOnce();
    expect(await value(age)).toBe(0);
    expect(await value('latchkey_outbox_unpublished_events')).toBe(0);
    expect(await registry.metrics()).toMatch(/^latchkey_outbox_oldest_unpublished_age_seconds 0$/m);
  });

  it('rolls a transaction back when its work fails or outlives its timeout, and the pool goes on', async () => {
    await write(1);
    const mark = (tx: Parameters<Parameters<OutboxDatabase['$transaction']>[0]>[0]) =>
      tx.$executeRawUnsafe('UPDATE outbox_events SET published_at = now()');
    await expect(
      db.$transaction(async (tx) => {
        await mark(tx);
        throw new Error('publish failed (test)');
      }),
    ).rejects.toThrow('publish failed (test)');
    await expect(
      db.$transaction(
        async (tx) => {
          await mark(tx);
          await new Promise((r) => setTimeout(r, 1_000));
        },
        { timeout: 200 },
      ),
    ).rejects.toThrow(TransactionTimeoutError);
    const relay = new OutboxRelay(db, new RecordingPublisherFake());
    expect(await relay.backlog()).toBe(1);
    // The pool is still usable afterwards.
    expect(await db.$transaction((tx) => mark(tx))).toBe(1);
    expect(await relay.backlog()).toBe(0);
  });

  it('sends the events of notifications close together in one batch (linger)', async () => {
    const fake = new RecordingPublisherFake();
    const relay = new OutboxRelay(db, fake, { idleMs: 60_000, lingerMs: 400 });
    relay.start();
    await new Promise((r) => setTimeout(r, 100)); // its first drain found nothing
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(...(await write(1)));
      relay.notify();
    }
    const deadline = Date.now() + 10_000;
    while (fake.published.length < 4 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await relay.stop();
    expect(fake.published.map((e) => e.id)).toEqual(ids);
    expect(fake.calls).toBe(1);
  });

  it('keeps its back-off while the broker is down, however many events are notified', async () => {
    await write(1);
    const fake = new RecordingPublisherFake();
    fake.down = true;
    const relay = new OutboxRelay(db, fake, { idleMs: 60_000, maxBackoffMs: 400 });
    relay.start();
    const until = Date.now() + 1_000;
    while (Date.now() < until) {
      relay.notify();
      await new Promise((r) => setTimeout(r, 5));
    }
    await relay.stop();
    // Back-off 400 ms (200 ms, then capped at 400 ms): a handful of tries in 1 s, not one per notify.
    expect(fake.calls).toBeGreaterThanOrEqual(2);
    expect(fake.calls).toBeLessThanOrEqual(5);
  });
});
