/** The first-start seed: demo tenant, operator and users with TOTP; credentials once. */
import { PLATFORM_TENANT_ID } from '@latchkey/events';
import { launcher, ScratchDatabase, TEST_PROFILE } from '@latchkey/testing';
import { seedContext, seedDemo } from '../src/seed/seed';

const DB = `latchkey_tauth_auth_seed_${process.pid}`;

it('seeds an operator and a demo tenant with an admin and a user once, then does nothing', async () => {
  const scratch = await ScratchDatabase.create(DB, 'auth');
  const ctx = seedContext({
    ...launcher.serviceEnv('auth', TEST_PROFILE),
    DATABASE_URL: `postgresql://postgres@127.0.0.1:5432/${DB}`,
  });
  try {
    const accounts = await seedDemo(ctx);
    expect(accounts?.map((a) => [a.username, a.roles])).toEqual([
      ['operator', ['operator']],
      ['admin', ['admin', 'user']],
      ['alice', ['user']],
    ]);
    expect(accounts![0]!.tenantId).toBe(PLATFORM_TENANT_ID);
    for (const a of accounts!) {
      expect(a.password.length).toBeGreaterThanOrEqual(20);
      expect(a.totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    }
    await expect(seedDemo(ctx)).resolves.toBeUndefined();
    const factors = await scratch.$queryRawUnsafe<{ status: string; secret_encrypted: string }[]>(
      `SELECT status, secret_encrypted FROM totp_factors`,
    );
    expect(factors.map((f) => f.status)).toEqual(['active', 'active', 'active']);
    for (const f of factors)
      for (const a of accounts!) expect(f.secret_encrypted).not.toContain(a.totpSecret);
    const events = await scratch.$queryRawUnsafe<{ type: string }[]>(
      `SELECT type FROM outbox_events ORDER BY id`,
    );
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'dev.latchkey.auth.tenant.created.v1',
        'dev.latchkey.auth.user.created.v1',
        'dev.latchkey.auth.mfa.enrolled.v1',
      ]),
    );
  } finally {
    await ctx.close();
    await scratch.drop();
  }
}, 60_000);
