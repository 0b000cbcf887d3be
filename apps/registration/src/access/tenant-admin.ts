/** Who may administer a tenant's devices: an admin of that tenant, or a platform operator. */
import { assertTenantAccess, type Principal, principalOf } from '@latchkey/service-kit';

/** The verified caller of an admin call on `tenantId` (request or gRPC metadata). */
export function tenantAdmin(requestOrMetadata: object, tenantId: string): Principal {
  const principal = principalOf(requestOrMetadata);
  assertTenantAccess(principal, tenantId);
  return principal;
}

/** The opaque id of a pagination cursor: base64url JSON. */
export function encodeCursor(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(
  token: string | undefined,
  valid: (v: unknown) => v is T,
): T | undefined {
  if (!token) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (valid(v)) return v;
  } catch {
    // fall through
  }
  return undefined;
}
