/** The key policy operations behind both transports (gRPC and HTTPS): validation and tenant access. */
import { Inject, Injectable } from '@nestjs/common';
import type { provisioningV1 } from '@latchkey/contracts';
import { assertTenantAccess, parseRequest, principalOf } from '@latchkey/service-kit';
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
