/**
 * The port through which provisioning checks a device assertion (a compact JWS
 * signed by the device key). The implementation is the platform's shared
 * verifier in libs/crypto (issue #4); provisioning never verifies device
 * signatures on its own.
 */
export interface ExpectedDeviceAssertion {
  tenantId: string;
  deviceId: string;
  /** `aud` the assertion must carry. */
  audience: string;
}

export interface DeviceAssertionVerifier {
  /**
   * Resolves when the assertion is valid for `expected`; rejects with a DomainError otherwise.
   * `device` is what the caller just read from registration (saves a second lookup).
   */
  verify(
    assertion: string,
    expected: ExpectedDeviceAssertion,
    device?: { status: string; certificatePem: string },
  ): Promise<void>;
}

export const DEVICE_ASSERTION_VERIFIER = Symbol('DEVICE_ASSERTION_VERIFIER');

/** `aud` of device assertions addressed to provisioning. */
export const PROVISIONING_AUDIENCE = 'latchkey-provisioning';
