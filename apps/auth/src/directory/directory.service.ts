/**
 * Tenants and their users: creation, import, enable/disable/delete, password
 * reset. Every change is written with its event in one transaction.
 */
import { Inject, Injectable } from '@nestjs/common';
import {
  createEvent,
  type EventDefinition,
  OutboxRelay,
  outboxRecord,
  PLATFORM_TENANT_ID,
  TenantCreated,
  UserCreated,
  UserDeleted,
  UserDisabled,
  UserEnabled,
  UserPasswordChanged,
} from '@latchkey/events';
import { DomainError, keyset, matchingKey, parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';
import { PrismaClient, type Prisma, type Tenant, type User } from '../generated/prisma/client';
import { PasswordHasher } from '../passwords/password-hasher';

type Tx = Prisma.TransactionClient;
export type UserWithFactor = User & { totp: { status: string } | null };

const uuid = z.string().uuid('must be a UUID');
/** ListUsers' order: by username, unique in a tenant (any stored username, up to 256 characters). */
const userPages = keyset({
  sortKey: 'username',
  sort: matchingKey(/^[\s\S]{1,256}$/),
  direction: 'asc',
});
const optional = <T extends z.ZodTypeAny>(s: T) =>
  z.preprocess((v) => (v === '' || v === null ? undefined : v), s.optional());

export const passwordSchema = z
  .string()
  .min(12, 'must be at least 12 characters')
  .max(1024, 'must be at most 1024 characters');

// Zero (the proto3 default of an unset field) means "keep the default".
const unsetIfZero = (max: number) =>
  z.preprocess((v) => (v === 0 ? undefined : v), z.number().int().min(1).max(max).optional());

const lockoutPolicy = z
  .object({
    threshold: unsetIfZero(100),
    windowSeconds: unsetIfZero(86_400),
    durationSeconds: unsetIfZero(86_400),
  })
  .strict();

export const createTenantCommand = z.object({
  name: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/,
      'must be 3–63 lower-case letters, digits or dashes',
    ),
  displayName: z.string().trim().min(1, 'is required').max(256),
  lockoutPolicy: z.preprocess((v) => v ?? undefined, lockoutPolicy.optional()),
});

type Role = 'user' | 'admin' | 'operator';

export const newUserSchema = z.object({
  username: z
    .string()
    .regex(/^[A-Za-z0-9._@+-]{1,128}$/, 'must be 1–128 letters, digits or . _ @ + -')
    .transform((u) => u.toLowerCase()),
  displayName: z.string().trim().min(1, 'is required').max(256),
  email: optional(z.string().email('must be an e-mail address').max(320)),
  roles: z
    .array(z.enum(['user', 'admin', 'operator']))
    .max(3)
    .default([])
    .transform((r): Role[] => (r.length ? [...new Set(r)] : ['user'])),
  password: optional(passwordSchema),
});
export type NewUser = z.infer<typeof newUserSchema>;

export interface Actor {
  subject: string;
  roles: readonly string[];
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === 'P2002';
}

@Injectable()
export class Directory {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(PasswordHasher) private readonly passwords: PasswordHasher,
    @Inject(OutboxRelay) private readonly relay: Pick<OutboxRelay, 'notify'>,
  ) {}

  private async emit<S extends z.ZodTypeAny>(
    tx: Tx,
    def: EventDefinition<S>,
    tenantId: string,
    data: z.infer<S>,
  ) {
    await tx.outboxEvent.create({ data: outboxRecord(createEvent(def, tenantId, data)) });
  }

  async createTenant(input: unknown, actor: Actor): Promise<Tenant> {
    const cmd = parseRequest(createTenantCommand, input, 'INVALID_TENANT');
    try {
      const tenant = await this.db.$transaction(async (tx) => {
        const t = await tx.tenant.create({
          data: {
            name: cmd.name,
            displayName: cmd.displayName,
            ...(cmd.lockoutPolicy?.threshold
              ? { lockoutThreshold: cmd.lockoutPolicy.threshold }
              : {}),
            ...(cmd.lockoutPolicy?.windowSeconds
              ? { lockoutWindowSeconds: cmd.lockoutPolicy.windowSeconds }
              : {}),
            ...(cmd.lockoutPolicy?.durationSeconds
              ? { lockoutDurationSeconds: cmd.lockoutPolicy.durationSeconds }
              : {}),
          },
        });
        await this.emit(tx, TenantCreated, t.id, {
          tenantId: t.id,
          name: t.name,
          displayName: t.displayName,
          actorId: actor.subject,
        });
        return t;
      });
      this.relay.notify();
      return tenant;
    } catch (err) {
      if (isUniqueViolation(err))
        throw new DomainError(
          'ALREADY_EXISTS',
          'TENANT_NAME_TAKEN',
          'a tenant with this name exists',
        );
      throw err;
    }
  }

  async getTenant(tenantId: string): Promise<Tenant> {
    const id = parseRequest(uuid, tenantId, 'INVALID_TENANT_ID');
    const t = await this.db.tenant.findUnique({ where: { id } });
    if (!t) throw DomainError.notFound('TENANT_NOT_FOUND', 'no such tenant');
    return t;
  }

  private checkRoles(tenantId: string, user: NewUser, actor: Actor): void {
    if (user.roles.includes('operator')) {
      if (tenantId !== PLATFORM_TENANT_ID)
        throw DomainError.invalidArgument(
          'INVALID_USER',
          'roles: operator exists only in the platform tenant',
          [{ field: 'roles', description: 'operator exists only in the platform tenant' }],
        );
      if (!actor.roles.includes('operator'))
        throw new DomainError(
          'PERMISSION_DENIED',
          'ROLE_REQUIRED',
          'only an operator grants operator',
        );
    }
  }

  private async insertUsers(
    tenantId: string,
    users: NewUser[],
    actor: Actor,
    origin: 'admin' | 'import' | 'seed',
  ): Promise<UserWithFactor[]> {
    await this.getTenant(tenantId);
    for (const u of users) this.checkRoles(tenantId, u, actor);
    const hashes = await Promise.all(
      users.map((u) => (u.password ? this.passwords.hash(u.password) : Promise.resolve(null))),
    );
    try {
      const created = await this.db.$transaction(
        async (tx) => {
          const out: UserWithFactor[] = [];
          for (const [i, u] of users.entries()) {
            const row = await tx.user.create({
              data: {
                tenantId,
                username: u.username,
                displayName: u.displayName,
                email: u.email ?? null,
                roles: u.roles,
                passwordHash: hashes[i],
                passwordChangedAt: hashes[i] ? new Date() : null,
              },
              include: { totp: { select: { status: true } } },
            });
            await this.emit(tx, UserCreated, tenantId, {
              tenantId,
              userId: row.id,
              username: row.username,
              roles: u.roles,
              origin,
              actorId: actor.subject,
            });
            out.push(row);
          }
          return out;
        },
        { timeout: 60_000 },
      );
      this.relay.notify();
      return created;
    } catch (err) {
      if (isUniqueViolation(err))
        throw new DomainError(
          'ALREADY_EXISTS',
          'USERNAME_TAKEN',
          'a user with this username exists in the tenant',
        );
      throw err;
    }
  }

  async createUser(
    tenantId: string,
    input: unknown,
    actor: Actor,
    origin: 'admin' | 'seed' = 'admin',
  ): Promise<UserWithFactor> {
    parseRequest(uuid, tenantId, 'INVALID_TENANT_ID');
    const user = parseRequest(newUserSchema, input ?? {}, 'INVALID_USER');
    return (await this.insertUsers(tenantId, [user], actor, origin))[0]!;
  }

  async importUsers(tenantId: string, input: unknown, actor: Actor): Promise<UserWithFactor[]> {
    parseRequest(uuid, tenantId, 'INVALID_TENANT_ID');
    const users = parseRequest(
      z.array(newUserSchema).min(1).max(1000),
      input,
      'INVALID_USER_IMPORT',
    );
    const names = new Set(users.map((u) => u.username));
    if (names.size !== users.length)
      throw DomainError.invalidArgument('INVALID_USER_IMPORT', 'users: usernames repeat');
    return this.insertUsers(tenantId, users, actor, 'import');
  }

  async getUser(tenantId: string, userId: string): Promise<UserWithFactor> {
    const ids = parseRequest(
      z.object({ tenantId: uuid, userId: uuid }),
      { tenantId, userId },
      'INVALID_USER_ID',
    );
    const user = await this.db.user.findFirst({
      where: { id: ids.userId, tenantId: ids.tenantId },
      include: { totp: { select: { status: true } } },
    });
    if (!user) throw DomainError.notFound('USER_NOT_FOUND', 'no such user in this tenant');
    return user;
  }

  async listUsers(
    tenantId: string,
    pageSize: number | undefined,
    pageToken: string | undefined,
  ): Promise<{ users: UserWithFactor[]; nextPageToken: string }> {
    const q = parseRequest(
      z.object({
        tenantId: uuid,
        pageSize: z.number().int().min(0).max(500).optional(),
        pageToken: z.string().max(512).optional(),
      }),
      { tenantId, pageSize, pageToken },
      'INVALID_LIST_REQUEST',
    );
    const page = await userPages.page(
      { pageSize: q.pageSize || 100, pageToken: q.pageToken },
      ({ where, orderBy, take }) =>
        this.db.user.findMany({
          where: { tenantId: q.tenantId, ...where },
          orderBy,
          take,
          include: { totp: { select: { status: true } } },
        }),
    );
    return { users: page.items, nextPageToken: page.nextPageToken };
  }

  private async setStatus(
    tenantId: string,
    userId: string,
    status: 'active' | 'disabled',
    actor: Actor,
  ): Promise<UserWithFactor> {
    const existing = await this.getUser(tenantId, userId);
    if (existing.status === status) return existing;
    const user = await this.db.$transaction(async (tx) => {
      const u = await tx.user.update({
        where: { id: existing.id },
        data: { status },
        include: { totp: { select: { status: true } } },
      });
      await this.emit(tx, status === 'disabled' ? UserDisabled : UserEnabled, u.tenantId, {
        tenantId: u.tenantId,
        userId: u.id,
        actorId: actor.subject,
      });
      return u;
    });
    this.relay.notify();
    return user;
  }

  disableUser(tenantId: string, userId: string, actor: Actor) {
    return this.setStatus(tenantId, userId, 'disabled', actor);
  }

  enableUser(tenantId: string, userId: string, actor: Actor) {
    return this.setStatus(tenantId, userId, 'active', actor);
  }

  async deleteUser(tenantId: string, userId: string, actor: Actor): Promise<void> {
    const existing = await this.getUser(tenantId, userId);
    await this.db.$transaction(async (tx) => {
      await tx.user.delete({ where: { id: existing.id } });
      await this.emit(tx, UserDeleted, existing.tenantId, {
        tenantId: existing.tenantId,
        userId: existing.id,
        actorId: actor.subject,
      });
    });
    this.relay.notify();
  }

  async setPassword(tenantId: string, userId: string, password: unknown, actor: Actor) {
    const pw = parseRequest(
      z.object({ password: passwordSchema }),
      { password },
      'INVALID_PASSWORD',
    );
    const existing = await this.getUser(tenantId, userId);
    const hash = await this.passwords.hash(pw.password);
    await this.db.$transaction(async (tx) => {
      await tx.user.update({
        where: { id: existing.id },
        data: { passwordHash: hash, passwordChangedAt: new Date() },
      });
      await this.emit(tx, UserPasswordChanged, existing.tenantId, {
        tenantId: existing.tenantId,
        userId: existing.id,
        actorId: actor.subject,
        origin: 'admin_reset',
      });
    });
    this.relay.notify();
  }
}
