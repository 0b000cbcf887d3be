/**
 * Join tokens: enrollment authorizations made by tenant admins. The secret
 * (`lkjt_` + 32 random bytes, base64url) is shown once; only its SHA-256 is
 * stored. Uses are taken atomically by the statement that stores registrations
 * (RegistrationWriter), so N parallel registrations with a single-use token
 * admit exactly one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  DomainError,
  keyCodecs,
  keyset,
  parseRequest,
  type Principal,
} from '@latchkey/service-kit';
import { z } from 'zod';
import { type JoinToken, PrismaClient } from '../generated/prisma/client';
import { TenantDirectory } from '../tenants/tenant-directory.service';

const TOKEN_PREFIX = 'lkjt_';
/** How long a token row read for a precheck is reused, and how many are kept. */
const PRECHECK_TTL_MS = 5_000;
const PRECHECK_CACHE_LIMIT = 10_000;
const TOKEN_FORMAT = /^lkjt_[A-Za-z0-9_-]{43}$/;

export const hashJoinToken = (token: string) => createHash('sha256').update(token).digest();

export const createJoinTokenCommand = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  maxUses: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .transform((n) => n || 1),
  ttlSeconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .transform((n) => n || 86_400)
    .refine((n) => n >= 60, 'must be at least 60'),
  deviceNamePrefix: z.string().max(64).default(''),
  description: z.string().max(256).default(''),
});

const listCommand = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  pageSize: z
    .number()
    .int()
    .min(0)
    .max(500)
    .transform((n) => n || 50),
  pageToken: z.string().max(512).default(''),
});

/** ListJoinTokens' order: newest first, by (createdAt, id). */
const joinTokenPages = keyset({
  sortKey: 'createdAt',
  sort: keyCodecs.date,
  id: keyCodecs.uuid,
  direction: 'desc',
});

/** Why a presented join token does not admit a device (maps to an error and an event reason). */
export type JoinTokenRefusal =
  | 'join_token_invalid'
  | 'join_token_expired'
  | 'join_token_exhausted'
  | 'join_token_revoked'
  | 'join_token_tenant_mismatch'
  | 'device_name_not_allowed';

export class JoinTokenRefused extends DomainError {
  constructor(
    readonly refusal: JoinTokenRefusal,
    readonly joinTokenId?: string,
  ) {
    const [kind, reason, message] = REFUSALS[refusal];
    super(kind, reason, message);
  }
}

const REFUSALS: Record<JoinTokenRefusal, [DomainError['kind'], string, string]> = {
  join_token_invalid: ['UNAUTHENTICATED', 'JOIN_TOKEN_INVALID', 'the join token is not valid'],
  join_token_expired: ['UNAUTHENTICATED', 'JOIN_TOKEN_EXPIRED', 'the join token has expired'],
  join_token_exhausted: [
    'UNAUTHENTICATED',
    'JOIN_TOKEN_USED',
    'the join token has been used as many times as allowed',
  ],
  join_token_revoked: ['UNAUTHENTICATED', 'JOIN_TOKEN_REVOKED', 'the join token was revoked'],
  join_token_tenant_mismatch: [
    'PERMISSION_DENIED',
    'JOIN_TOKEN_TENANT_MISMATCH',
    'the join token was not issued for this tenant',
  ],
  device_name_not_allowed: [
    'PERMISSION_DENIED',
    'DEVICE_NAME_NOT_ALLOWED',
    "the device name does not start with the join token's prefix",
  ],
};

@Injectable()
export class JoinTokens {
  /** Token rows read by precheck(), by hash: they only ever admit to the checks. */
  private readonly recent = new Map<string, { row: JoinToken; until: number }>();
  private readonly reading = new Map<string, Promise<JoinToken | null>>();

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    private readonly tenants: TenantDirectory,
  ) {}

  async create(
    principal: Principal,
    input: unknown,
  ): Promise<{ joinToken: JoinToken; token: string }> {
    const cmd = parseRequest(createJoinTokenCommand, input, 'INVALID_JOIN_TOKEN_REQUEST');
    await this.tenants.tenant(cmd.tenantId);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const joinToken = await this.db.joinToken.create({
      data: {
        tenantId: cmd.tenantId,
        tokenHash: hashJoinToken(token),
        hint: token.slice(0, TOKEN_PREFIX.length + 4),
        description: cmd.description,
        maxUses: cmd.maxUses,
        deviceNamePrefix: cmd.deviceNamePrefix || null,
        expiresAt: new Date(Date.now() + cmd.ttlSeconds * 1000),
        createdBy: principal.subject,
      },
    });
    return { joinToken, token };
  }

  async list(input: unknown): Promise<{ joinTokens: JoinToken[]; nextPageToken: string }> {
    const cmd = parseRequest(listCommand, input);
    const page = await joinTokenPages.page(cmd, ({ where, orderBy, take }) =>
      this.db.joinToken.findMany({ where: { tenantId: cmd.tenantId, ...where }, orderBy, take }),
    );
    return { joinTokens: page.items, nextPageToken: page.nextPageToken };
  }

  async revoke(tenantId: string, joinTokenId: string): Promise<JoinToken> {
    const ids = parseRequest(
      z.object({
        tenantId: z.string().uuid('must be a UUID'),
        joinTokenId: z.string().uuid('must be a UUID'),
      }),
      { tenantId, joinTokenId },
    );
    await this.db.joinToken.updateMany({
      where: { id: ids.joinTokenId, tenantId: ids.tenantId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    const token = await this.db.joinToken.findFirst({
      where: { id: ids.joinTokenId, tenantId: ids.tenantId },
    });
    if (!token)
      throw DomainError.notFound('JOIN_TOKEN_NOT_FOUND', 'no such join token in this tenant');
    return token;
  }

  /**
   * Checks a presented token without taking a use (before the expensive work).
   * A row read in the last PRECHECK_TTL_MS may let a registration go on (its
   * use is taken, or not, when it is stored); a refusal is always decided on
   * a fresh read. Throws JoinTokenRefused; returns the token's id.
   */
  async precheck(
    token: string,
    tenantId: string,
    displayName: string,
    now = new Date(),
  ): Promise<string> {
    if (!TOKEN_FORMAT.test(token)) throw new JoinTokenRefused('join_token_invalid');
    const hash = hashJoinToken(token);
    const key = hash.toString('base64');
    const hit = this.recent.get(key);
    if (hit && hit.until > now.getTime() && !refusalOf(hit.row, tenantId, displayName, now))
      return hit.row.id;
    // A burst of registrations with a new token makes one read, not one each.
    let read = this.reading.get(key);
    if (!read) {
      read = this.db.joinToken
        .findUnique({ where: { tokenHash: hash } })
        .finally(() => this.reading.delete(key));
      this.reading.set(key, read);
    }
    const row = await read;
    if (row) {
      if (this.recent.size >= PRECHECK_CACHE_LIMIT)
        this.recent.delete(this.recent.keys().next().value!);
      this.recent.set(key, { row, until: now.getTime() + PRECHECK_TTL_MS });
    }
    return admitOrRefuse(row, tenantId, displayName, now);
  }

  /**
   * Why a token that passed precheck() gave no use when the registration was
   * stored (a fresh read): JoinTokenRefused, used up when nothing else explains it.
   */
  async refusal(
    token: string,
    tenantId: string,
    displayName: string,
    now = new Date(),
  ): Promise<JoinTokenRefused> {
    const hash = hashJoinToken(token);
    this.recent.delete(hash.toString('base64'));
    const row = await this.db.joinToken.findUnique({ where: { tokenHash: hash } });
    const refusal = refusalOf(row, tenantId, displayName, now) ?? 'join_token_exhausted';
    return new JoinTokenRefused(refusal, row && row.tenantId === tenantId ? row.id : undefined);
  }
}

function admitOrRefuse(
  row: JoinToken | null,
  tenantId: string,
  displayName: string,
  now: Date,
): string {
  const refusal = refusalOf(row, tenantId, displayName, now);
  if (refusal)
    throw new JoinTokenRefused(refusal, row && row.tenantId === tenantId ? row.id : undefined);
  return row!.id;
}

function refusalOf(
  row: JoinToken | null,
  tenantId: string,
  displayName: string,
  now: Date,
): JoinTokenRefusal | undefined {
  if (!row) return 'join_token_invalid';
  if (row.tenantId !== tenantId) return 'join_token_tenant_mismatch';
  if (row.revokedAt) return 'join_token_revoked';
  if (row.expiresAt <= now) return 'join_token_expired';
  if (row.useCount >= row.maxUses) return 'join_token_exhausted';
  if (row.deviceNamePrefix && !displayName.startsWith(row.deviceNamePrefix))
    return 'device_name_not_allowed';
  return undefined;
}
