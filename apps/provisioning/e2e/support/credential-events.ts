/** Collects the CloudEvents published on latchkey.credential.v1 during a test run. */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Topics } from '@latchkey/events';

export interface SeenEvent {
  type: string;
  subject: string;
  tenantId: string;
  data: Record<string, unknown>;
}

export class CredentialEventLog {
  readonly events: SeenEvent[] = [];
  private readonly consumer;

  constructor(brokers: string) {
    const kafka = new Kafka({
      clientId: `tprov-${randomUUID()}`,
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
    });
    this.consumer = kafka.consumer({ groupId: `tprov-test-${randomUUID()}` });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: Topics.credential, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        const h = (k: string) => message.headers?.[k]?.toString() ?? '';
        this.events.push({
          type: h('ce_type'),
          subject: h('ce_subject'),
          tenantId: h('ce_tenantid'),
          data: JSON.parse(message.value?.toString() ?? '{}') as Record<string, unknown>,
        });
      },
    });
  }

  of(tenantId: string, type: string): SeenEvent[] {
    return this.events.filter(
      (e) => e.tenantId === tenantId && e.type === `dev.latchkey.credential.${type}.v1`,
    );
  }

  /** Waits for an event of `type` in `tenantId` matching `data`. */
  async waitFor(
    tenantId: string,
    type: string,
    data: Record<string, unknown> = {},
    timeoutMs = 20_000,
  ): Promise<SeenEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.of(tenantId, type).find((e) =>
        Object.entries(data).every(([k, v]) => JSON.stringify(e.data[k]) === JSON.stringify(v)),
      );
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(
          `no credential.${type} event with ${JSON.stringify(data)} in ${timeoutMs} ms`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  stop(): Promise<void> {
    return this.consumer.disconnect();
  }
}
