/** Where the e2e environment lives: ports, files and the service launcher. */
import { join, resolve } from 'node:path';

// The CommonJS launcher shared with `npm start`: a script of the repository,
// not a library, so it is loaded by path.
const launcherPath = resolve(__dirname, '../../../tools/scripts/services.cjs');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const launcher = require(launcherPath) as {
  root: string;
  catalog: { profiles: Record<string, { portOffset: number; dbPrefix: string }> };
  ports(service: string, profile?: string): { http: number; grpc: number };
  serviceEnv(service: string, profile?: string, extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** INTERNAL_CALL_SIGNING_KEYS the launcher derives for a service (a JWK Set, JSON). */
  localInternalCallSigningKeys(service: string): string;
  startService(
    service: string,
    options: { profile?: string; env?: Record<string, string>; logFile?: string },
  ): import('node:child_process').ChildProcess;
  stopChild(child: import('node:child_process').ChildProcess, timeoutMs?: number): Promise<void>;
  waitReady(
    service: string,
    profile?: string,
    options?: { timeoutMs?: number; child?: import('node:child_process').ChildProcess },
  ): Promise<void>;
  startAll(options: {
    profile?: string;
    env?: Record<string, string>;
    logDir?: string;
    names?: string[];
  }): Promise<{
    children: Record<string, import('node:child_process').ChildProcess>;
    stop(): Promise<void>;
  }>;
};

export { launcher };
export const REPO_ROOT = launcher.root;
/** `test` in CI; engineers working in parallel pick another profile of tools/services.json. */
export const TEST_PROFILE = process.env.LATCHKEY_TEST_PROFILE ?? 'test';
const PROFILE_INDEX = Math.max(0, Object.keys(launcher.catalog.profiles).indexOf(TEST_PROFILE));
export const TMP_DIR = join(
  REPO_ROOT,
  'tmp',
  TEST_PROFILE === 'test' ? 'e2e' : `e2e-${TEST_PROFILE}`,
);
export const LOG_DIR = join(TMP_DIR, 'logs');
export const SPANS_FILE = join(TMP_DIR, 'spans.ndjson');
export const OTLP_PORT = 4399 + PROFILE_INDEX;
export const KAFKA_BROKERS = '127.0.0.1:9092';

export function grpcAddress(service: string): string {
  return `127.0.0.1:${launcher.ports(service, TEST_PROFILE).grpc}`;
}

export function httpBase(service: string): string {
  return `http://127.0.0.1:${launcher.ports(service, TEST_PROFILE).http}`;
}

/**
 * Id of the key-encryption key the services of the test profile encrypt new secrets with
 * (the first of the launcher's KEY_ENCRYPTION_KEYS: this clone's local key, unless the
 * environment sets KEY_ENCRYPTION_KEYS).
 */
export function currentKeyEncryptionKeyId(): string {
  // `<kid>:<key>[,...]`, the first encrypts (libs/crypto parseKeyEncryptionKeys). Parsed here
  // without libs/crypto: jest's global set-up loads this file without the path mapping.
  const keys = launcher.serviceEnv('registration', TEST_PROFILE).KEY_ENCRYPTION_KEYS ?? '';
  return keys.split(',')[0]!.trim().split(':')[0]!;
}
