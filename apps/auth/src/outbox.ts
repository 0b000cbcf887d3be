/** Appends a domain event to auth's outbox (in `tx` when given) and wakes the relay. */
import {
  createEvent,
  type EventDefinition,
  type OutboxRelay,
  outboxRecord,
} from '@latchkey/events';
import type { z } from 'zod';
import type { Prisma } from './generated/prisma/client';

export async function emitEvent<S extends z.ZodTypeAny>(
  tx: Prisma.TransactionClient,
  relay: Pick<OutboxRelay, 'notify'>,
  def: EventDefinition<S>,
  tenantId: string,
  data: z.infer<S>,
): Promise<void> {
  await tx.outboxEvent.create({ data: outboxRecord(createEvent(def, tenantId, data)) });
  relay.notify();
}
