/** Tenant key policy. Stored per tenant from issue #5 on; until then every tenant gets the defaults. */
import { Controller, Module } from '@nestjs/common';
import { provisioningV1 } from '@latchkey/contracts';
import { parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';

export const DEFAULT_KEY_POLICY: Omit<provisioningV1.KeyPolicy, 'tenantId'> = {
  requireTpm: false,
  allowedAlgorithms: ['RS256', 'ES256'],
  mfaFreshnessSeconds: 600,
  maxKeysPerUser: 10,
  maxKeysPerDevice: 2,
};

@Controller()
@provisioningV1.ProvisioningServiceControllerMethods()
export class PoliciesGrpcController implements provisioningV1.ProvisioningServiceController {
  getKeyPolicy(req: provisioningV1.GetKeyPolicyRequest): provisioningV1.GetKeyPolicyResponse {
    const { tenantId } = parseRequest(
      z.object({ tenantId: z.string().uuid('must be a UUID') }),
      req,
      'INVALID_POLICY_REQUEST',
    );
    return { policy: { tenantId, ...DEFAULT_KEY_POLICY } };
  }
}

@Module({ controllers: [PoliciesGrpcController] })
export class PoliciesModule {}
