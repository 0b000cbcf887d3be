/** The CompleteProvisioning request a device sends, for the suites that provision as a device. */
import { proofOver, type UserKey } from './user-keys';

/** CompleteProvisioning for `challenge`: `key`'s public JWK and its proof of possession over it. */
export async function completeRequest(deviceId: string, challenge: string, key: UserKey) {
  return {
    deviceId,
    challenge,
    publicKeyJwk: key.publicKeyJwk,
    algorithm: key.algorithm,
    proofOfPossession: await proofOver(challenge, key),
  };
}
