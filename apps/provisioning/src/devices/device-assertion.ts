/**
 * The port through which provisioning checks a device assertion (a compact JWS
 * signed by the device key). The implementation is the platform's shared
 * verifier in libs/crypto (issue #4); provisioning never verifies device
 * signatures on its own.
 */
import { DomainError } from '@latchkey/service-kit';

export interface ExpectedDeviceAssertion {
  tenantId: string;
  deviceId: string;
  /** `aud` the assertion must carry. */
  audience: string;
}

export interface DeviceAssertionVerifier {
  /** Resolves when the assertion is valid for `expected`; rejects with a DomainError otherwise. */
  verify(assertion: string, expected: ExpectedDeviceAssertion): Promise<void>;
}

export const DEVICE_ASSERTION_VERIFIER = Symbol('DEVICE_ASSERTION_VERIFIER');

/** `aud` of device assertions addressed to provisioning. */
export const PROVISIONING_AUDIENCE = 'latchkey-provisioning';

/**
 * Until the shared verifier of libs/crypto exists, device assertions cannot be
 * checked: provisioning then fails closed (UNAVAILABLE), never open.
 */
export class PendingDeviceAssertionVerifier implements DeviceAssertionVerifier {
  verify(): Promise<void> {
    return Promise.reject(
      DomainError.unavailable(
        'DEVICE_ASSERTIONS_UNAVAILABLE',
        'device assertions cannot be verified by this build',
      ),
    );
  }
}
