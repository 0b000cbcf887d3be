/** Tenant key policy: stored per tenant, defaults otherwise. */
import { Module } from '@nestjs/common';
import {
  KeyPolicyEndpoints,
  PoliciesGrpcController,
  PoliciesHttpController,
} from './policies.controllers';
import { KeyPolicyService } from './key-policy.service';

@Module({
  controllers: [PoliciesGrpcController, PoliciesHttpController],
  providers: [KeyPolicyService, KeyPolicyEndpoints],
  exports: [KeyPolicyService],
})
export class PoliciesModule {}
