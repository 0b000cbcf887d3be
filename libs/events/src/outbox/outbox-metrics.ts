/**
 * The outbox's health as Prometheus gauges, read from the database at scrape
 * time: latchkey_outbox_oldest_unpublished_age_seconds (the chart's
 * LatchkeyOutboxLagging alert) and latchkey_outbox_unpublished_events.
 * Every replica reports the same database; alerts take the max per service.
 */
import { Gauge, type Registry } from 'prom-client';
import type { OutboxRelay } from './outbox';

export function registerOutboxMetrics(
  registry: Registry,
  relay: Pick<OutboxRelay, 'oldestUnpublishedAgeSeconds' | 'backlog'>,
): void {
  // A failed read keeps the last value: the scrape must not fail with the database
  // (readiness reports that), and a lagging outbox must not look healthy meanwhile.
  new Gauge({
    name: 'latchkey_outbox_oldest_unpublished_age_seconds',
    help: 'Seconds the oldest event not yet published to Kafka has waited in the outbox (0 = none waits)',
    registers: [registry],
    async collect() {
      const age = await relay.oldestUnpublishedAgeSeconds().catch(() => undefined);
      if (age !== undefined) this.set(age);
    },
  });
  new Gauge({
    name: 'latchkey_outbox_unpublished_events',
    help: 'Events in the outbox not yet published to Kafka',
    registers: [registry],
    async collect() {
      const backlog = await relay.backlog().catch(() => undefined);
      if (backlog !== undefined) this.set(backlog);
    },
  });
}
