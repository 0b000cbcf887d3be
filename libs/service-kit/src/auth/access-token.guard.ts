/**
 * Nest guard for HTTP and gRPC handlers: requires a valid bearer access token
 * (`authorization: Bearer …` header or gRPC metadata) and, with @RequireRoles,
 * one of the roles. The verified Principal is available through principalOf().
 */
import {
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Metadata } from '@grpc/grpc-js';
import { DomainError } from '../errors/domain-error';
import { AccessTokenVerifier, type Principal, type Role } from './access-token';

const ROLES_KEY = 'latchkey:roles';
const PRINCIPAL = Symbol('latchkey:principal');

/** The handler needs one of these roles (operators pass every role check). */
export const RequireRoles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

function bearer(value: unknown): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string') return undefined;
  const m = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(text.trim());
  return m?.[1];
}

function carrier(ctx: ExecutionContext): { token?: string; target: object } {
  if (ctx.getType() === 'rpc') {
    const metadata = ctx.switchToRpc().getContext<Metadata>();
    return { token: bearer(metadata.get('authorization')), target: metadata };
  }
  const req = ctx.switchToHttp().getRequest<{ headers: Record<string, unknown> }>();
  return { token: bearer(req.headers.authorization), target: req };
}

/** The principal verified by AccessTokenGuard for this request (HTTP request or gRPC metadata). */
export function principalOf(requestOrMetadata: object): Principal {
  const p = (requestOrMetadata as { [PRINCIPAL]?: Principal })[PRINCIPAL];
  if (!p)
    throw new DomainError(
      'UNAUTHENTICATED',
      'ACCESS_TOKEN_REQUIRED',
      'an access token is required',
    );
  return p;
}

@Injectable()
export class AccessTokenGuard implements CanActivate {
  constructor(
    @Inject(AccessTokenVerifier) private readonly verifier: AccessTokenVerifier,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const { token, target } = carrier(ctx);
    if (!token)
      throw new DomainError(
        'UNAUTHENTICATED',
        'ACCESS_TOKEN_REQUIRED',
        'an access token is required',
      );
    const principal = await this.verifier.verify(token);
    const needed = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [
      ctx.getHandler(),
      ctx.getClass(),
    ]);
    if (
      needed?.length &&
      !principal.roles.includes('operator') &&
      !needed.some((r) => principal.roles.includes(r))
    ) {
      throw new DomainError(
        'PERMISSION_DENIED',
        'ROLE_REQUIRED',
        `requires one of the roles: ${needed.join(', ')}`,
      );
    }
    Object.defineProperty(target, PRINCIPAL, { value: principal, enumerable: false });
    return true;
  }
}

/**
 * The tenant a caller may act on: its own, or any tenant for an operator. A
 * tenant id in the request body alone is never trusted.
 */
export function assertTenantAccess(principal: Principal, tenantId: string): void {
  if (principal.roles.includes('operator') || principal.tenantId === tenantId) return;
  throw new DomainError(
    'PERMISSION_DENIED',
    'TENANT_MISMATCH',
    'the token does not grant access to this tenant',
  );
}
