/** Helpers of auth's end-to-end tests: clients, seeded operators, sign-in. */
import {
  authClient as testingAuthClient,
  bearer,
  eventually,
  grpcAddress,
  launcher,
  TEST_PROFILE,
  type UnaryClient,
} from '@latchkey/testing';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';
import { totpCode } from '../src/totp/totp';
import { createAccount, type SeededAccount, seedContext } from '../src/seed/seed';

export const authEnv = () => launcher.serviceEnv('auth', TEST_PROFILE);

/** A promise client of latchkey.auth.v1's AuthService or AdminService (default: the test profile's auth). */
export function authClient(service: 'AuthService' | 'AdminService', address = grpcAddress('auth')) {
  return testingAuthClient(service, address);
}

export { bearer };

/** Creates an account with password and active TOTP straight in auth's database (as the seed does). */
export async function seedAccount(
  tenantId: string,
  username: string,
  roles: string[],
): Promise<SeededAccount> {
  const ctx = seedContext(authEnv());
  try {
    return await createAccount(ctx, tenantId, { username, displayName: username, roles });
  } finally {
    await ctx.close();
  }
}

/** A seeded account (`unique(label)`) signed in with password + TOTP: the account and its access token. */
export async function signedInAccount(
  auth: UnaryClient,
  tenantId: string,
  label: string,
  roles: string[],
): Promise<SeededAccount & { token: string }> {
  const account = await seedAccount(tenantId, unique(label), roles);
  return { ...account, token: await signIn(auth, account) };
}

/** The next TOTP code that has not been used yet for `secret` (waits for a new step if needed). */
const lastStep = new Map<string, number>();
export async function freshCode(secret: string): Promise<string> {
  for (;;) {
    const step = Math.floor(Date.now() / 30_000);
    if ((lastStep.get(secret) ?? -1) < step) {
      lastStep.set(secret, step);
      return totpCode(secret);
    }
    await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 50));
  }
}

export async function signIn(
  auth: UnaryClient,
  a: { tenantId: string; username: string; password: string; totpSecret: string },
): Promise<string> {
  const first = await auth.SignInWithPassword({
    tenant: a.tenantId,
    username: a.username,
    password: a.password,
  });
  const done = await auth.CompleteMfa({
    mfaTicket: first.mfaTicket,
    code: await freshCode(a.totpSecret),
  });
  return done.accessToken as string;
}

/** Rows of auth's outbox (what the relay publishes to Kafka). */
export async function outboxEvents(
  type: string,
  where: Record<string, string> = {},
): Promise<{ data: Record<string, unknown>; published: boolean }[]> {
  const c = new Client({ connectionString: authEnv().DATABASE_URL });
  await c.connect();
  try {
    const conds = Object.keys(where).map((k, i) => `data->>'${k}' = $${i + 2}`);
    const r = await c.query(
      `SELECT data, published_at FROM outbox_events WHERE type = $1 ${conds.length ? `AND ${conds.join(' AND ')}` : ''} ORDER BY id`,
      [type, ...Object.values(where)],
    );
    return r.rows.map((row: { data: Record<string, unknown>; published_at: Date | null }) => ({
      data: row.data,
      published: row.published_at !== null,
    }));
  } finally {
    await c.end();
  }
}

export const unique = (p: string) =>
  `${p}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** Retries assertions until they pass (or the time runs out, with the last failure). */
export function settles(assertions: () => Promise<void>, timeoutMs = 30_000): Promise<true> {
  return eventually(
    async () => {
      await assertions();
      return true as const;
    },
    { timeoutMs, what: 'assertions to pass' },
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Runs one query on auth's database. */
export async function authDb<T>(sql: string, values: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: authEnv().DATABASE_URL });
  await c.connect();
  try {
    return (await c.query(sql, values)).rows as T[];
  } finally {
    await c.end();
  }
}

/** A redis-server of a test's own (so that stopping it leaves other suites alone). */
export class PrivateRedis {
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  start(): void {
    execFileSync('redis-server', [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
    ]);
  }

  stop(): void {
    try {
      execFileSync('redis-cli', ['-p', String(this.port), 'shutdown', 'nosave'], {
        stdio: 'ignore',
      });
    } catch {
      // already stopped
    }
  }

  async up(): Promise<void> {
    await settles(async () => {
      expect(
        execFileSync('redis-cli', ['-p', String(this.port), 'ping'])
          .toString()
          .trim(),
      ).toBe('PONG');
    }, 10_000);
  }
}

/** A second auth process of the test profile (own ports, `env` on top); ready when resolved. */
export async function startAuthInstance(
  logName: string,
  env: Record<string, string> = {},
): Promise<{ auth: UnaryClient; stop(): Promise<void> }> {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const child = launcher.startService('auth', {
    profile: TEST_PROFILE,
    env: { ...env, HTTP_PORT: String(httpPort), GRPC_PORT: String(grpcPort) },
    logFile: join(launcher.root, 'tmp', `e2e-${TEST_PROFILE}`, 'logs', `${logName}.log`),
  });
  await settles(async () => {
    expect((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status).toBe(200);
  }, 60_000);
  const auth = authClient('AuthService', `127.0.0.1:${grpcPort}`);
  return {
    auth,
    stop: async () => {
      auth.close();
      await launcher.stopChild(child);
    },
  };
}
