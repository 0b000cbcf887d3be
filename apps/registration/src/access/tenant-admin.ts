/** Who may administer a tenant's devices: an admin of that tenant, or a platform operator. */
import { assertTenantAccess, type Principal, principalOf } from '@latchkey/service-kit';

/** The verified caller of an admin call on `tenantId` (request or gRPC metadata). */
export function tenantAdmin(requestOrMetadata: object, tenantId: string): Principal {
  const principal = principalOf(requestOrMetadata);
  assertTenantAccess(principal, tenantId);
  return principal;
}
