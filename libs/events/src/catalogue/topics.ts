/**
 * Kafka topics: one per publishing area, the audit service's own, and each consuming
 * service's dead-letter topic (consumed events it cannot use, with their reason; each
 * service has its own, so that one service's refusals do not mix with another's).
 */
export const Topics = {
  auth: 'latchkey.auth.v1',
  device: 'latchkey.device.v1',
  credential: 'latchkey.credential.v1',
  audit: 'latchkey.audit.v1',
  auditDlq: 'latchkey.audit.dlq.v1',
  registrationDlq: 'latchkey.registration.dlq.v1',
  provisioningDlq: 'latchkey.provisioning.dlq.v1',
} as const;

export type Topic = (typeof Topics)[keyof typeof Topics];

/** Topics carrying domain events (what audit consumes). */
export const DOMAIN_TOPICS: readonly Topic[] = [Topics.auth, Topics.device, Topics.credential];

export const ALL_TOPICS: readonly Topic[] = Object.values(Topics);
