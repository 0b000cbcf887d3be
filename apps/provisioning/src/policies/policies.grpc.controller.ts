/** Tenant key policy over gRPC: GetKeyPolicy, UpdateKeyPolicy (admin). */
import { Controller, Inject, UseGuards } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { provisioningV1 } from '@latchkey/contracts';
import { AccessTokenGuard, RequireRoles } from '@latchkey/service-kit';
import { KeyPolicyEndpoints } from './key-policy.endpoints';

@Controller()
@UseGuards(AccessTokenGuard)
export class PoliciesGrpcController {
  constructor(@Inject(KeyPolicyEndpoints) private readonly endpoints: KeyPolicyEndpoints) {}

  @GrpcMethod('ProvisioningService', 'GetKeyPolicy')
  getKeyPolicy(req: provisioningV1.GetKeyPolicyRequest, md: Metadata) {
    return this.endpoints.get(md, req);
  }

  @GrpcMethod('ProvisioningService', 'UpdateKeyPolicy')
  @RequireRoles('admin')
  updateKeyPolicy(req: provisioningV1.UpdateKeyPolicyRequest, md: Metadata) {
    return this.endpoints.update(md, req);
  }
}
