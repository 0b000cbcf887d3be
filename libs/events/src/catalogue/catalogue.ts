/**
 * The event catalogue: the one definition of every event type, its topic,
 * source and data schema. Validated when an event is made and when consumed.
 */
import { z } from 'zod';
import type { Topic } from './topics';
import { AUTH_EVENTS } from './auth-events';
import { CREDENTIAL_EVENTS } from './credential-events';
import { DEVICE_EVENTS } from './device-events';
import { AUDIT_EVENTS } from './audit-events';

/** Kept here for importers from before device events had their own module. */
export { DeviceRegistered } from './device-events';

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

const id = z.string().min(1).max(128);

/** Every event type latchkey emits, by CloudEvents type. */
export const EVENT_CATALOGUE: ReadonlyMap<string, EventDefinition> = new Map(
  [...DEVICE_EVENTS, ...AUTH_EVENTS, ...CREDENTIAL_EVENTS, ...AUDIT_EVENTS].map((d) => [
    d.type,
    d as unknown as EventDefinition,
  ]),
);

export function eventDefinition(type: string): EventDefinition | undefined {
  return EVENT_CATALOGUE.get(type);
}

export const identifierSchema = id;
