/** Kafka topics, one per publishing area, and the audit service's own. */
export const Topics = {
  auth: 'latchkey.auth.v1',
  device: 'latchkey.device.v1',
  credential: 'latchkey.credential.v1',
  audit: 'latchkey.audit.v1',
  auditDlq: 'latchkey.audit.dlq.v1',
} as const;

export type Topic = (typeof Topics)[keyof typeof Topics];

/** Topics carrying domain events (what audit consumes). */
export const DOMAIN_TOPICS: readonly Topic[] = [Topics.auth, Topics.device, Topics.credential];

export const ALL_TOPICS: readonly Topic[] = Object.values(Topics);
