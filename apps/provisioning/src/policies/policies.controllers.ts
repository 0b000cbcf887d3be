/** Tenant key policy over gRPC (Get/UpdateKeyPolicy) and HTTPS (/v1/tenants/{tenant}/key-policy). */
import {
  Body,
  Controller,
  Get,
  Inject,
  Injectable,
  Param,
  Put,
  Req,
  UseGuards,
} from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { provisioningV1 } from '@latchkey/contracts';
import {
  AccessTokenGuard,
  assertTenantAccess,
  parseRequest,
  principalOf,
  RequireRoles,
} from '@latchkey/service-kit';
import { z } from 'zod';
import { keyPolicyRules } from './key-policy';
import { toProtoKeyPolicy } from './key-policy.mapping';
import { KeyPolicyService } from './key-policy.service';

const tenantIdSchema = z.string().uuid('must be a UUID');

function tenantOf(input: unknown): string {
  return parseRequest(z.object({ tenantId: tenantIdSchema }), input, 'INVALID_POLICY_REQUEST')
    .tenantId;
}

/** The one implementation behind both transports. */
@Injectable()
export class KeyPolicyEndpoints {
  constructor(@Inject(KeyPolicyService) private readonly policies: KeyPolicyService) {}

  async get(caller: object, input: unknown): Promise<provisioningV1.GetKeyPolicyResponse> {
    const tenantId = tenantOf(input);
    assertTenantAccess(principalOf(caller), tenantId);
    return { policy: toProtoKeyPolicy(await this.policies.effective(tenantId)) };
  }

  async update(caller: object, input: unknown): Promise<provisioningV1.UpdateKeyPolicyResponse> {
    const { policy } = parseRequest(
      z.object({ policy: z.object({ tenantId: tenantIdSchema }).passthrough() }),
      input,
      'INVALID_POLICY',
    );
    const actor = principalOf(caller);
    assertTenantAccess(actor, policy.tenantId);
    const rules = parseRequest(keyPolicyRules, policy, 'INVALID_POLICY');
    return { policy: toProtoKeyPolicy(await this.policies.replace(policy.tenantId, rules, actor)) };
  }
}

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

@Controller('v1/tenants/:tenantId/key-policy')
@UseGuards(AccessTokenGuard)
export class PoliciesHttpController {
  constructor(@Inject(KeyPolicyEndpoints) private readonly endpoints: KeyPolicyEndpoints) {}

  @Get()
  getKeyPolicy(@Req() req: object, @Param('tenantId') tenantId: string) {
    return this.endpoints.get(req, { tenantId });
  }

  /** Body: the policy's fields (tenantId comes from the path). */
  @Put()
  @RequireRoles('admin')
  updateKeyPolicy(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Body() body: Record<string, unknown> | undefined,
  ) {
    return this.endpoints.update(req, { policy: { ...(body ?? {}), tenantId } });
  }
}
