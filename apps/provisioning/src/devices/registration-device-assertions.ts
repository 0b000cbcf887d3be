/**
 * Device assertions checked with the platform's shared verifier (libs/crypto),
 * looking devices and tenant CAs up in registration over gRPC. A `jti` is
 * accepted once (Redis), so a captured assertion cannot be replayed.
 */
import { DeviceAssertionError, DeviceAssertionVerifier as SharedVerifier } from '@latchkey/crypto';
import { DomainError } from '@latchkey/service-kit';
import type { Redis } from 'ioredis';
import {
  type DeviceAssertionVerifier,
  type ExpectedDeviceAssertion,
  PROVISIONING_AUDIENCE,
} from './device-assertion';
import type { RegistrationClient } from './registration.client';

export class RegistrationDeviceAssertions implements DeviceAssertionVerifier {
  private readonly verifier: SharedVerifier;

  constructor(registration: RegistrationClient, redis: Redis) {
    this.verifier = new SharedVerifier(
      {
        tenantCaCertificate: (tenantId) => registration.tenantCaCertificate(tenantId),
        device: async (tenantId, deviceId) => {
          const d = await registration.getDevice(tenantId, deviceId);
          return d?.certificatePem ? { status: d.status, certificatePem: d.certificatePem } : null;
        },
      },
      {
        audience: PROVISIONING_AUDIENCE,
        rememberJti: async (jti, expiresAt) =>
          (await redis.set(
            `latchkey:device-jti:${PROVISIONING_AUDIENCE}:${jti}`,
            '1',
            'PX',
            Math.max(1000, expiresAt.getTime() - Date.now()),
            'NX',
          )) === 'OK',
      },
    );
  }

  async verify(assertion: string, expected: ExpectedDeviceAssertion): Promise<void> {
    try {
      await this.verifier.verify(assertion, {
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
