/** Tenant key policy: stored per tenant, defaults otherwise. */
import { Module } from '@nestjs/common';
import { KeyPolicyEndpoints } from './key-policy.endpoints';
import { PoliciesGrpcController } from './policies.grpc.controller';
import { PoliciesHttpController } from './policies.http.controller';
import { KeyPolicyService } from './key-policy.service';

@Module({
  controllers: [PoliciesGrpcController, PoliciesHttpController],
  providers: [KeyPolicyService, KeyPolicyEndpoints],
  exports: [KeyPolicyService],
})
export class PoliciesModule {}
