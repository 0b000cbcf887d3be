#!/usr/bin/env node
/** latchkey-agent: the device's client of latchkey (register, provision, key sign-in, refresh, audit). */
import { parseArgs } from 'node:util';
import { AgentContext, type Flags } from './cli/agent-context';
import { Terminal } from './cli/terminal';
import { auditTail, auditVerify } from './commands/audit-commands';
import { register, status, unregister } from './commands/device-commands';
import { login, provision, refresh, resetPin } from './commands/key-commands';
import { KeystoreError } from './keystore/software-keystore';
import { UsageError } from './server/endpoints';
import { ServiceCallError } from './server/service-clients';

export const USAGE = `usage: latchkey-agent <command> [options]

commands:
  register   --tenant <id> [--join-token <token>] [--name <display name>] [--join-type joined|registered]
             [--tpm [--tcti <tcti>] --aik-cert <pem file> [--aik-handle <0x81…>]]   keys in the TPM, attested
             [--server <host>] [--port-offset <n>] [--plaintext | --tls-ca <file>]
  provision  [--user <username>] [--friendly-name <text>]    password, TOTP code, then a new PIN
             [--tpm [--tcti <tcti>]]   the user key inside the TPM, the PIN its authorization value
  login                                                       PIN → key sign-in; prints the token claims
  refresh                                                     new tokens with the PRT (rotated)
  status                                                      device, key, PIN, session, servers
  reset-pin  [--user <username>] [--tpm [--tcti <tcti>]]     destructive: a new key after password + TOTP
  unregister [--force]                                        deletes the user key on the server, wipes the keystore
  audit tail   [--tenant <id>] --user <admin> [--follow] [--from-seq <n>] [--file <export.ndjson>]
  audit verify [--tenant <id>] --user <admin> [--keys <file|url>] [--file <export.ndjson>] [--allow-partial]

common options:
  --keystore <dir>   the keystore folder (default $LATCHKEY_AGENT_HOME or ~/.latchkey-agent)
  --json             machine-readable output
  --transport grpc|https   gRPC (default) or the services' HTTPS JSON APIs; register stores it
  --registration-addr, --provisioning-addr, --auth-addr, --audit-addr <host:port>   (gRPC)
  --registration-url, --provisioning-url, --auth-url, --audit-url <url>            (HTTP(S))

Secrets (join token, password, TOTP code, PIN) are asked on the terminal, or read
one per line from stdin when it is not a terminal. They are never printed.
audit commands without --user take an admin access token from $LATCHKEY_ACCESS_TOKEN.

exit status: 0 done, 1 refused or failed, 2 usage, 3 server unreachable, 4 PIN locked or key destroyed`;

const OPTIONS = {
  keystore: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  tenant: { type: 'string' },
  'join-token': { type: 'string' },
  'join-type': { type: 'string' },
  name: { type: 'string' },
  tpm: { type: 'boolean' },
  tcti: { type: 'string' },
  'aik-cert': { type: 'string' },
  'aik-handle': { type: 'string' },
  user: { type: 'string' },
  'friendly-name': { type: 'string' },
  'pin-min-length': { type: 'string' },
  force: { type: 'boolean' },
  follow: { type: 'boolean' },
  interval: { type: 'string' },
  'from-seq': { type: 'string' },
  file: { type: 'string' },
  keys: { type: 'string' },
  'allow-partial': { type: 'boolean' },
  transport: { type: 'string' },
  server: { type: 'string' },
  'port-offset': { type: 'string' },
  plaintext: { type: 'boolean' },
  'tls-ca': { type: 'string' },
  'registration-addr': { type: 'string' },
  'provisioning-addr': { type: 'string' },
  'auth-addr': { type: 'string' },
  'audit-addr': { type: 'string' },
  'auth-url': { type: 'string' },
  'audit-url': { type: 'string' },
  'registration-url': { type: 'string' },
  'provisioning-url': { type: 'string' },
} as const;

type Command = (ctx: AgentContext) => Promise<number | void>;

const COMMANDS: Record<string, Command> = {
  register,
  provision,
  login,
  refresh,
  status,
  'reset-pin': resetPin,
  unregister,
  'audit tail': auditTail,
  'audit verify': auditVerify,
};

/** A clear message for what went wrong, and the exit status that goes with it. */
export function explain(err: unknown): { message: string; exitCode: number } {
  if (err instanceof UsageError) return { message: err.message, exitCode: 2 };
  if (err instanceof KeystoreError) {
    const locked = ['PIN_LOCKED', 'KEY_DESTROYED', 'WRONG_PIN'].includes(err.code);
    return { message: err.message, exitCode: locked ? 4 : err.code === 'KEYSTORE_UNSAFE' ? 2 : 1 };
  }
  if (err instanceof ServiceCallError) {
    const hint = (err as ServiceCallError & { hint?: string }).hint;
    const base = serviceMessage(err);
    return { message: hint ? `${base}\n${hint}` : base, exitCode: err.unreachable ? 3 : 1 };
  }
  const e = err as Error & { cause?: { code?: string } };
  if (e?.cause?.code === 'ECONNREFUSED' || e?.name === 'TimeoutError')
    return { message: `the server is unreachable: ${e.message}`, exitCode: 3 };
  return { message: e?.message ?? String(err), exitCode: 1 };
}

function serviceMessage(err: ServiceCallError): string {
  if (err.unreachable) return `cannot reach the ${err.service} service: ${err.detail}`;
  switch (err.reason) {
    case 'DEVICE_INACTIVE':
    case 'DEVICE_NOT_ACTIVE':
      return 'this device is disabled or deleted by an administrator';
    case 'SIGN_IN_FAILED':
      return err.method === 'SignInWithKey'
        ? 'sign-in refused: the key may be revoked, the device disabled or deleted, or the user disabled'
        : 'sign-in refused: wrong username or password, or the account is disabled or locked';
    case 'MFA_FAILED':
      return 'the authenticator code was refused: start again';
    case 'REFRESH_FAILED':
      return 'the session was refused (revoked, expired or the device/key is no longer valid): run `latchkey-agent login`';
    case 'MFA_MISSING':
    case 'MFA_STALE':
      return 'provisioning needs a fresh password + TOTP sign-in';
    default:
      return `${err.service} refused ${err.method}: ${err.reason ?? err.detail}`;
  }
}

export async function run(
  argv: string[],
  io: { out: (t: string) => void; err: (t: string) => void } = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  },
): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`latchkey-agent: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const name = positionals[0] === 'audit' ? positionals.slice(0, 2).join(' ') : positionals[0];
  if (values.help || !name) {
    io.out(`${USAGE}\n`);
    return name || values.help ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`latchkey-agent: unknown command "${name}"\n${USAGE}\n`);
    return 2;
  }
  const ctx = new AgentContext(values as Flags, new Terminal(), io.out);
  try {
    return (await command(ctx)) ?? 0;
  } catch (err) {
    const { message, exitCode } = explain(err);
    io.err(`latchkey-agent ${name}: ${message}\n`);
    return exitCode;
  } finally {
    ctx.close();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`latchkey-agent: ${err.message}\n`);
      process.exit(1);
    },
  );
}
