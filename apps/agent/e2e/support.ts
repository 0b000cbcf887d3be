/**
 * Helpers of the agent's end-to-end journey: the agent run as a child process
 * (the built CLI), a bootstrap operator seeded with auth's own seed code (as
 * `npm start` does), admin API clients, TOTP codes as an authenticator app
 * makes them, and a TCP relay that records the bytes the agent sends.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  authClient,
  bearer,
  eventually,
  grpcAddress,
  grpcClient,
  launcher,
  REPO_ROOT,
  TEST_PROFILE,
} from '@latchkey/testing';

export const AGENT_MAIN = join(REPO_ROOT, 'dist/apps/agent/src/main.js');

export interface AgentRun {
  code: number;
  stdout: string;
  stderr: string;
}

// What the demo (`npm run demo`) shares with these tests: a script of the repository, loaded by path.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kit = require(join(REPO_ROOT, 'tools/scripts/demo-kit.cjs')) as {
  seedAccount(
    profile: string,
    options: {
      tenantId?: string;
      user: { username: string; displayName: string; roles: string[] };
    },
  ): Account;
  freshCode(secret: string): Promise<string>;
  runAgent(
    home: string,
    args: string[],
    input?: string[],
    env?: Record<string, string>,
  ): Promise<AgentRun>;
};

/** Runs `latchkey-agent args…` with `input` on stdin (one secret per line). */
export function agent(
  home: string,
  args: string[],
  input: string[] = [],
  env: Record<string, string> = {},
): Promise<AgentRun> {
  return kit.runAgent(home, args, input, env);
}

/** The gRPC port offset of the test profile (the agent's --port-offset). */
export function portOffset(): number {
  return launcher.ports('auth', TEST_PROFILE).grpc - 50053;
}

export interface Account {
  tenantId: string;
  userId: string;
  username: string;
  password: string;
  totpSecret: string;
}

/** A platform operator with password and active TOTP, made by auth's seed code (as `npm start` seeds). */
export function seedOperator(username: string): Account {
  return kit.seedAccount(TEST_PROFILE, {
    user: { username, displayName: 'Agent e2e operator', roles: ['operator'] },
  });
}

export { authClient, bearer };

/** The next TOTP code not used yet for `secret` (auth accepts each time step once): waits for a new step if needed. */
export const freshCode = (secret: string): Promise<string> => kit.freshCode(secret);

/** A TCP relay in front of a service that keeps every byte the client sends. */
export class RecordingRelay {
  readonly sent: Buffer[] = [];
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<RecordingRelay> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const relay = new RecordingRelay(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => {
      const upstream = connect(target.port, target.host);
      relay.sockets.add(client).add(upstream);
      client.on('data', (d: Buffer) => relay.sent.push(Buffer.from(d)));
      client.pipe(upstream).pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    return relay;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  bytes(): Buffer {
    return Buffer.concat(this.sent);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const unique = (p: string) =>
  `${p}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/**
 * A fresh tenant made the way people make one: an operator (seeded) creates
 * it, then its admin and the user alice through the admin API; each enrols
 * TOTP on first sign-in, as its owner would with an authenticator app.
 */
export class AgentTenant {
  readonly auth = authClient('AuthService', grpcAddress('auth'));
  readonly adminApi = authClient('AdminService', grpcAddress('auth'));
  readonly registration = grpcClient('registration', grpcAddress('registration'));
  readonly provisioning = grpcClient('provisioning', grpcAddress('provisioning'));
  tenantId = '';
  admin!: Account;
  alice!: Account;
  private cachedAdminToken?: { token: string; at: number };

  static async create(label: string): Promise<AgentTenant> {
    const t = new AgentTenant();
    const operator = seedOperator(unique(`${label}-op`));
    const operatorToken = await t.signIn(operator);
    const tenant = await t.adminApi.CreateTenant(
      { name: unique(label), displayName: `Agent ${label}` },
      bearer(operatorToken),
    );
    t.tenantId = (tenant.tenant as { tenantId: string }).tenantId;
    const admin = await t.enrolTotp(await t.newUser(operatorToken, 'admin', ['admin', 'user']));
    t.admin = admin;
    t.cachedAdminToken = { token: admin.token, at: Date.now() };
    t.alice = await t.enrolTotp(await t.newUser(admin.token, 'alice', ['user']));
    await eventually(
      async () =>
        (await t.registration.getTenantCaCertificate!({ tenantId: t.tenantId }).catch(
          () => undefined,
        )) ?? undefined,
      { what: 'the tenant device CA', timeoutMs: 60_000 },
    );
    return t;
  }

  async signIn(a: Account): Promise<string> {
    const first = await this.auth.SignInWithPassword({
      tenant: a.tenantId,
      username: a.username,
      password: a.password,
    });
    const done = await this.auth.CompleteMfa({
      mfaTicket: first.mfaTicket,
      code: await freshCode(a.totpSecret),
    });
    return done.accessToken as string;
  }

  /** Password sign-in + first TOTP enrolment of a user made through the admin API. */
  private async enrolTotp(a: Omit<Account, 'totpSecret'>): Promise<Account & { token: string }> {
    const first = await this.auth.SignInWithPassword({
      tenant: a.tenantId,
      username: a.username,
      password: a.password,
    });
    if (!first.totpEnrollmentRequired) throw new Error(`${a.username} has a TOTP factor already`);
    const { secret } = (await this.auth.EnrollTotp({ mfaTicket: first.mfaTicket })) as {
      secret: string;
    };
    const done = await this.auth.CompleteMfa({
      mfaTicket: first.mfaTicket,
      code: await freshCode(secret),
    });
    return { ...a, totpSecret: secret, token: done.accessToken as string };
  }

  private async newUser(token: string, username: string, roles: string[]) {
    const password = `pw-${unique('secret')}-long`;
    const res = await this.adminApi.CreateUser(
      { tenantId: this.tenantId, user: { username, displayName: username, roles, password } },
      bearer(token),
    );
    return {
      tenantId: this.tenantId,
      userId: (res.user as { userId: string }).userId,
      username,
      password,
    };
  }

  /** An admin access token (signed in again when the cached one gets old). */
  async adminToken(): Promise<string> {
    if (!this.cachedAdminToken || Date.now() - this.cachedAdminToken.at > 4 * 60_000)
      this.cachedAdminToken = { token: await this.signIn(this.admin), at: Date.now() };
    return this.cachedAdminToken.token;
  }

  async joinToken(): Promise<string> {
    const res = await this.registration.createJoinToken!(
      { tenantId: this.tenantId, maxUses: 1, ttlSeconds: 600 },
      bearer(await this.adminToken()),
    );
    return res.token as string;
  }

  async credentialsOf(
    deviceId: string,
  ): Promise<{ credentialId: string; status: string; attestationLevel: string }[]> {
    const res = await this.provisioning.listCredentials!(
      { tenantId: this.tenantId, deviceId },
      bearer(await this.adminToken()),
    );
    return res.credentials as { credentialId: string; status: string; attestationLevel: string }[];
  }

  close(): void {
    for (const c of [this.auth, this.adminApi, this.registration, this.provisioning]) c.close();
  }
}

export interface TrailItem {
  seq: number;
  record: { metadata: { event_code: string }; [k: string]: unknown };
}

/** The tenant's audit trail through `latchkey-agent audit tail --json` (an admin's token), once it holds `until`. */
export async function auditTrail(
  t: AgentTenant,
  home: string,
  until: string,
  flags: string[] = [],
): Promise<TrailItem[]> {
  const tail = async () => {
    const r = await agent(home, ['audit', 'tail', '--json', ...adminFlags(t, flags)], [], {
      LATCHKEY_ACCESS_TOKEN: await t.adminToken(),
    });
    if (r.code !== 0) throw new Error(`audit tail failed: ${r.stderr}`);
    return r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as TrailItem);
  };
  return eventually(
    async () => {
      const trail = await tail();
      return trail.some((x) => x.record.metadata.event_code === until) ? trail : undefined;
    },
    { what: `${until} in the audit trail`, timeoutMs: 120_000, intervalMs: 1000 },
  );
}

/** The flags of an admin's audit command against the tenant on this test profile's stack. */
function adminFlags(t: AgentTenant, extra: string[]): string[] {
  return ['--tenant', t.tenantId, '--plaintext', '--port-offset', String(portOffset()), ...extra];
}

/** `latchkey-agent audit verify` signed in as the tenant's admin (password + TOTP). */
export async function verifyAuditTrail(
  t: AgentTenant,
  home: string,
  flags: string[] = [],
): Promise<AgentRun> {
  return agent(
    home,
    ['audit', 'verify', '--user', 'admin', ...adminFlags(t, flags)],
    [t.admin.password, await freshCode(t.admin.totpSecret)],
  );
}

/** The key session the agent keeps (session.json). */
export function storedSession(home: string): { refreshToken: string; sessionKey: string } {
  return JSON.parse(readFileSync(join(home, 'session.json'), 'utf8')) as {
    refreshToken: string;
    sessionKey: string;
  };
}

/** `latchkey-agent refresh` succeeds and stores the rotated PRT. */
export async function expectRefreshRotatesPrt(home: string): Promise<void> {
  const before = storedSession(home).refreshToken;
  const r = await agent(home, ['refresh', '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(storedSession(home).refreshToken).not.toBe(before);
}
