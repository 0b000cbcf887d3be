/**
 * Keeps credentials in step with their devices and users: device/user disabled
 * → suspended, enabled → active again (only if nothing else keeps them
 * suspended), deleted → revoked. Idempotent: each event (ce_id) is applied once.
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  type ConsumedEvent,
  createEvent,
  CredentialReactivated,
  CredentialRevoked,
  CredentialSuspended,
  OutboxRelay,
  outboxRecord,
} from '@latchkey/events';
import { PrismaClient, type Credential, type Prisma } from '../generated/prisma/client';

type Cause =
  | 'device_disabled'
  | 'device_enabled'
  | 'device_deleted'
  | 'user_disabled'
  | 'user_enabled'
  | 'user_deleted';

/** The event types provisioning reacts to, and what each does. */
const REACTIONS: Record<string, { cause: Cause; subject: 'deviceId' | 'userId' }> = {
  'dev.latchkey.device.disabled.v1': { cause: 'device_disabled', subject: 'deviceId' },
  'dev.latchkey.device.enabled.v1': { cause: 'device_enabled', subject: 'deviceId' },
  'dev.latchkey.device.deleted.v1': { cause: 'device_deleted', subject: 'deviceId' },
  'dev.latchkey.auth.user.disabled.v1': { cause: 'user_disabled', subject: 'userId' },
  'dev.latchkey.auth.user.enabled.v1': { cause: 'user_enabled', subject: 'userId' },
  'dev.latchkey.auth.user.deleted.v1': { cause: 'user_deleted', subject: 'userId' },
};

export const REACTION_EVENT_TYPES = Object.keys(REACTIONS);

type Tx = Prisma.TransactionClient;

@Injectable()
export class CredentialReactions {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
  ) {}

  /** Applies a batch in order; each event in its own transaction with its inbox row. */
  async handle(events: readonly ConsumedEvent[]): Promise<void> {
    let changed = false;
    for (const event of events) {
      const reaction = REACTIONS[event.type];
      if (!reaction) continue;
      const data = event.data as Record<string, unknown>;
      const subjectId = data[reaction.subject];
      if (typeof subjectId !== 'string' || typeof data.tenantId !== 'string') continue;
      const n = await this.db.$transaction(async (tx) => {
        const inserted = await tx.processedEvent.createMany({
          data: [{ eventId: event.id, type: event.type }],
          skipDuplicates: true,
        });
        if (!inserted.count) return 0; // redelivered: already applied
        return this.apply(tx, event.id, reaction.cause, {
          tenantId: data.tenantId as string,
          [reaction.subject]: subjectId,
        });
      });
      changed ||= n > 0;
    }
    if (changed) this.relay.notify();
  }

  private async apply(
    tx: Tx,
    causationId: string,
    cause: Cause,
    where: Prisma.CredentialWhereInput,
  ): Promise<number> {
    const flag: keyof Credential = cause.startsWith('device')
      ? 'suspendedForDevice'
      : 'suspendedForUser';
    const other: keyof Credential =
      flag === 'suspendedForDevice' ? 'suspendedForUser' : 'suspendedForDevice';
    const now = new Date();
    const affected = await tx.credential.findMany({
      where: { ...where, status: { not: 'revoked' } },
    });
    const events = [];
    for (const c of affected) {
      const ref = {
        tenantId: c.tenantId,
        userId: c.userId,
        deviceId: c.deviceId,
        credentialId: c.id,
        cause,
        causationId,
      };
      if (cause.endsWith('_deleted')) {
        await tx.credential.update({
          where: { id: c.id },
          data: { status: 'revoked', statusReason: cause, revokedAt: now },
        });
        events.push(createEvent(CredentialRevoked, c.tenantId, ref));
      } else if (cause.endsWith('_disabled')) {
        if (c[flag]) continue;
        await tx.credential.update({
          where: { id: c.id },
          data: { [flag]: true, status: 'suspended', statusReason: cause },
        });
        if (c.status === 'active') events.push(createEvent(CredentialSuspended, c.tenantId, ref));
      } else {
        if (!c[flag]) continue;
        const stillSuspended = c[other] as boolean;
        await tx.credential.update({
          where: { id: c.id },
          data: stillSuspended
            ? { [flag]: false }
            : { [flag]: false, status: 'active', statusReason: null },
        });
        if (!stillSuspended) events.push(createEvent(CredentialReactivated, c.tenantId, ref));
      }
    }
    if (events.length) await tx.outboxEvent.createMany({ data: events.map(outboxRecord) });
    return events.length;
  }
}
