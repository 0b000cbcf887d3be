import { Registry } from 'prom-client';
import { registerOutboxMetrics } from './outbox-metrics';

describe('registerOutboxMetrics', () => {
  it('reads the outbox at scrape time and keeps the last value while the database fails', async () => {
    let age: number | Error = 42.5;
    let backlog: number | Error = 7;
    const registry = new Registry();
    registerOutboxMetrics(registry, {
      oldestUnpublishedAgeSeconds: async () => {
        if (age instanceof Error) throw age;
        return age;
      },
      backlog: async () => {
        if (backlog instanceof Error) throw backlog;
        return backlog;
      },
    });
    const scrape = () => registry.metrics();
    expect(await scrape()).toMatch(/^latchkey_outbox_oldest_unpublished_age_seconds 42\.5$/m);
    expect(await scrape()).toMatch(/^latchkey_outbox_unpublished_events 7$/m);
    age = new Error('database down');
    backlog = new Error('database down');
    const text = await scrape();
    expect(text).toMatch(/^latchkey_outbox_oldest_unpublished_age_seconds 42\.5$/m);
    expect(text).toMatch(/^latchkey_outbox_unpublished_events 7$/m);
    age = 0;
    expect(await scrape()).toMatch(/^latchkey_outbox_oldest_unpublished_age_seconds 0$/m);
  });
});
