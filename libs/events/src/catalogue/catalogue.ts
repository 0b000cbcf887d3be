/**
 * The event catalogue: the one definition of every event type, its topic,
 * source and data schema. Validated when an event is made and when consumed.
 */
import { z } from 'zod';
import { type Topic, Topics } from './topics';
import { AUTH_EVENTS } from './auth-events';
import { CREDENTIAL_EVENTS } from './credential-events';
import { AUDIT_EVENTS } from './audit-events';

export interface EventDefinition<S extends z.ZodTypeAny = z.ZodTypeAny> {
  /** CloudEvents `type`, versioned: dev.latchkey.<area>.<what>.v<N>. */
  type: string;
  topic: Topic;
  /** CloudEvents `source` of the producing service. */
  source: string;
  schema: S;
  /** CloudEvents `subject`: the entity the event is about. */
  subject: (data: z.infer<S>) => string;
}

function defineEvent<S extends z.ZodTypeAny>(def: EventDefinition<S>): EventDefinition<S> {
  return def;
}

const id = z.string().min(1).max(128);
const tenantId = z.string().uuid();

export const DeviceRegistered = defineEvent({
  type: 'dev.latchkey.device.registered.v1',
  topic: Topics.device,
  source: '/latchkey/registration',
  schema: z
    .object({
      tenantId,
      deviceId: z.string().uuid(),
      displayName: z.string().min(1).max(256),
      osType: z.string().max(64),
      osVersion: z.string().max(64),
      joinType: z.enum(['registered', 'joined']),
      attestationLevel: z.enum(['none', 'software', 'tpm']),
    })
    .strict(),
  subject: (d) => `devices/${d.deviceId}`,
});

/** Every event type latchkey emits, by CloudEvents type. */
export const EVENT_CATALOGUE: ReadonlyMap<string, EventDefinition> = new Map(
  [DeviceRegistered, ...AUTH_EVENTS, ...CREDENTIAL_EVENTS, ...AUDIT_EVENTS].map((d) => [
    d.type,
    d as unknown as EventDefinition,
  ]),
);

export function eventDefinition(type: string): EventDefinition | undefined {
  return EVENT_CATALOGUE.get(type);
}

export const identifierSchema = id;
