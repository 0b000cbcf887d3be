/**
 * Device assertions checked with the platform's shared verifier (libs/crypto),
 * looking devices and tenant CAs up in registration over gRPC. A `jti` is
 * accepted once (Redis), so a captured assertion cannot be replayed.
 */
import { DeviceAssertionError, DeviceAssertionVerifier as SharedVerifier } from '@latchkey/crypto';
import { DomainError, type RedisClient } from '@latchkey/service-kit';
import {
  type DeviceAssertionVerifier,
  type ExpectedDeviceAssertion,
  PROVISIONING_AUDIENCE,
} from './device-assertion';
import type { RegistrationClient } from './registration.client';

/** Tenant CA certificates change only when a CA is replaced: keep them a minute. */
const CA_CACHE_MS = 60_000;

export class RegistrationDeviceAssertions implements DeviceAssertionVerifier {
  private readonly caCache = new Map<string, { pem: string; until: number }>();

  constructor(
    private readonly registration: RegistrationClient,
    private readonly redis: RedisClient,
  ) {}

  private async tenantCa(tenantId: string): Promise<string | null> {
    const hit = this.caCache.get(tenantId);
    if (hit && hit.until > Date.now()) return hit.pem;
    const pem = await this.registration.tenantCaCertificate(tenantId);
    if (pem) {
      if (this.caCache.size > 10_000) this.caCache.clear();
      this.caCache.set(tenantId, { pem, until: Date.now() + CA_CACHE_MS });
    }
    return pem;
  }

  async verify(
    assertion: string,
    expected: ExpectedDeviceAssertion,
    known?: { status: string; certificatePem: string },
  ): Promise<void> {
    const verifier = new SharedVerifier(
      {
        tenantCaCertificate: (tenantId) => this.tenantCa(tenantId),
        device: async (tenantId, deviceId) => {
          if (known && tenantId === expected.tenantId && deviceId === expected.deviceId)
            return known.certificatePem ? known : null;
          const d = await this.registration.getDevice(tenantId, deviceId);
          return d?.certificatePem ? { status: d.status, certificatePem: d.certificatePem } : null;
        },
      },
      {
        audience: PROVISIONING_AUDIENCE,
        rememberJti: async (jti, expiresAt) =>
          (await this.redis.set(
            `latchkey:device-jti:${PROVISIONING_AUDIENCE}:${jti}`,
            '1',
            'PX',
            Math.max(1000, expiresAt.getTime() - Date.now()),
            'NX',
          )) === 'OK',
      },
    );
    try {
      await verifier.verify(assertion, {
        tenantId: expected.tenantId,
        deviceId: expected.deviceId,
      });
    } catch (err) {
      if (err instanceof DeviceAssertionError)
        throw new DomainError(
          'UNAUTHENTICATED',
          'BAD_DEVICE_ASSERTION',
          `the device assertion is not valid (${err.code})`,
        );
      throw err;
    }
  }
}
