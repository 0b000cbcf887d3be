/** How a provisioning challenge is bound in the platform nonce store: tenant + device + user. */
import type { NonceBinding } from '@latchkey/service-kit';

export function challengeBinding(tenantId: string, deviceId: string, userId: string): NonceBinding {
  return { tenantId, deviceId: `${deviceId}/users/${userId}`, purpose: 'provisioning' };
}
