/**
 * Seeds a fresh installation: a platform operator, a demo tenant with an admin
 * and a user, each with a password and an active TOTP factor. Credentials are
 * returned (and printed by the CLI) once; later runs find the demo tenant and do
 * nothing. Writes through the same Directory as the admin API, so every change
 * has its event in the outbox (the running service's relay publishes them).
 *
 *   node dist/apps/auth/src/seed/seed.js      (npm start runs it; env as for the service)
 */
import { randomBytes } from 'node:crypto';
import { KeyEncryption } from '@latchkey/crypto';
import { createEvent, MfaEnrolled, outboxRecord, PLATFORM_TENANT_ID } from '@latchkey/events';
import { pgAdapterFromUrl } from '@latchkey/service-kit';
import { type Actor, Directory } from '../directory/directory.service';
import { PrismaClient } from '../generated/prisma/client';
import { PasswordHasher } from '../passwords/password-hasher';
import { totpSecretContext } from '../sign-in/sign-in.service';
import { generateTotpSecret } from '../totp/totp';

export interface SeededAccount {
  tenantId: string;
  tenantName: string;
  userId: string;
  username: string;
  password: string;
  totpSecret: string;
  roles: string[];
}

export interface SeedContext {
  db: PrismaClient;
  directory: Directory;
  kek: KeyEncryption;
  close(): Promise<void>;
}

const SEED_ACTOR: Actor = { subject: 'seed', roles: ['operator'] };

export function seedContext(env: NodeJS.ProcessEnv = process.env): SeedContext {
  const db = new PrismaClient({ adapter: pgAdapterFromUrl(env.DATABASE_URL!, { max: 2 }) });
  const kek = new KeyEncryption(env.KEY_ENCRYPTION_KEYS!);
  const hasher = new PasswordHasher({ logN: Number(env.PASSWORD_SCRYPT_LOG_N ?? 16), r: 8, p: 1 });
  const directory = new Directory(db, hasher, { notify: () => undefined });
  return { db, directory, kek, close: () => db.$disconnect() };
}

/** Creates a user with a random password and an active TOTP factor. */
export async function createAccount(
  ctx: SeedContext,
  tenantId: string,
  user: { username: string; displayName: string; roles: string[] },
): Promise<SeededAccount> {
  const password = randomBytes(15).toString('base64url');
  const created = await ctx.directory.createUser(
    tenantId,
    { ...user, password },
    SEED_ACTOR,
    'seed',
  );
  const totpSecret = generateTotpSecret();
  await ctx.db.$transaction(async (tx) => {
    await tx.totpFactor.create({
      data: {
        userId: created.id,
        secretEncrypted: ctx.kek.encrypt(totpSecret, totpSecretContext(created.id)),
        status: 'active',
        activatedAt: new Date(),
      },
    });
    const event = createEvent(MfaEnrolled, tenantId, {
      tenantId,
      userId: created.id,
      method: 'totp',
    });
    await tx.outboxEvent.create({ data: outboxRecord(event) });
  });
  const tenant = await ctx.directory.getTenant(tenantId);
  return {
    tenantId,
    tenantName: tenant.name,
    userId: created.id,
    username: created.username,
    password,
    totpSecret,
    roles: created.roles,
  };
}

/** The demo installation; undefined when it exists already. */
export async function seedDemo(ctx: SeedContext): Promise<SeededAccount[] | undefined> {
  if (await ctx.db.tenant.findUnique({ where: { name: 'demo' } })) return undefined;
  const operator = await createAccount(ctx, PLATFORM_TENANT_ID, {
    username: 'operator',
    displayName: 'Platform operator',
    roles: ['operator'],
  });
  const tenant = await ctx.directory.createTenant(
    { name: 'demo', displayName: 'Demo tenant' },
    SEED_ACTOR,
  );
  const admin = await createAccount(ctx, tenant.id, {
    username: 'admin',
    displayName: 'Demo admin',
    roles: ['admin', 'user'],
  });
  const user = await createAccount(ctx, tenant.id, {
    username: 'alice',
    displayName: 'Alice Demo',
    roles: ['user'],
  });
  return [operator, admin, user];
}

async function main(): Promise<void> {
  const ctx = seedContext();
  try {
    const accounts = await seedDemo(ctx);
    if (!accounts) {
      process.stdout.write(
        'auth seed: the demo tenant exists already (its credentials were printed when it was created).\n',
      );
      return;
    }
    const lines = accounts.map(
      (a) =>
        `  tenant ${a.tenantName.padEnd(9)} (${a.tenantId})  user ${a.username.padEnd(9)} ` +
        `password ${a.password}  TOTP secret ${a.totpSecret}  roles ${a.roles.join(',')}`,
    );
    process.stdout.write(
      `\nDemo accounts (shown once; add each TOTP secret to an authenticator app):\n${lines.join('\n')}\n\n`,
    );
  } finally {
    await ctx.close();
  }
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`auth seed failed: ${err.message}\n`);
    process.exit(1);
  });
}
