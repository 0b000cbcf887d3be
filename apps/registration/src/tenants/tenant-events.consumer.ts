/** Consumes auth's tenant events: each new tenant gets its copy here and its device CA. */
import {
  type BatchEventConsumerOptions,
  type ConsumedEvent,
  EventSchemaError,
  TenantCreated,
  Topics,
  validateEventData,
} from '@latchkey/events';
import type { RegistrationConfig } from '../config';
import type { TenantDirectory } from './tenant-directory.service';

export function tenantEventsConsumer(
  tenants: TenantDirectory,
  config: RegistrationConfig,
): BatchEventConsumerOptions {
  return {
    groupId:
      config.REGISTRATION_CONSUMER_GROUP ?? config.KAFKA_CLIENT_ID ?? 'latchkey-registration',
    topics: [Topics.auth],
    // Auth events registration cannot use (kept apart from audit's DLQ).
    deadLetterTopic: Topics.registrationDlq,
    handle: async (events: ConsumedEvent[]) => {
      const rejected: { event: ConsumedEvent; reason: string }[] = [];
      for (const event of events) {
        if (event.type !== TenantCreated.type) continue;
        let data;
        try {
          data = validateEventData(TenantCreated, event.data);
        } catch (err) {
          if (!(err instanceof EventSchemaError)) throw err;
          rejected.push({ event, reason: err.message });
          continue;
        }
        // Throws on a database outage: the batch is retried, the handler is idempotent.
        await tenants.tenantCreated(data);
      }
      return { rejected };
    },
  };
}
