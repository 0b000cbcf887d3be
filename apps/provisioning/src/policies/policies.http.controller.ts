/** Tenant key policy over HTTPS: GET/PUT /v1/tenants/{tenant}/key-policy. */
import { Body, Controller, Get, Inject, Param, Put, Req, UseGuards } from '@nestjs/common';
import { AccessTokenGuard, RequireRoles } from '@latchkey/service-kit';
import { KeyPolicyEndpoints } from './key-policy.endpoints';

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
