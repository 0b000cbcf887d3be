/** Helpers of registration's end-to-end tests: an instance trusting a test issuer, tenants, devices. */
import { execFileSync } from 'node:child_process';
import { randomUUID, type webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metadata } from '@grpc/grpc-js';
import { createEvent, KafkaEventBus, TenantCreated } from '@latchkey/events';
import {
  createJoinToken,
  deviceMaterial,
  type ExtraService,
  grpcClient,
  KAFKA_BROKERS,
  launcher,
  registerDeviceRequest,
  startExtraService,
  TEST_PROFILE,
  TestTokenIssuer,
  type UnaryClient,
  waitForDeviceCa,
} from '@latchkey/testing';
import { Client } from 'pg';

export interface RegistrationUnderTest {
  instance: ExtraService;
  client: UnaryClient;
  issuer: TestTokenIssuer;
  db: Client;
  /** An admin (or other role) token of a tenant, as gRPC metadata. */
  as(tenantId: string, roles?: ('user' | 'admin' | 'operator')[]): Promise<Metadata>;
  close(): Promise<void>;
}

/**
 * A registration instance (the built service) that trusts a test token issuer,
 * on the profile's database and Kafka. Auth's sign-in needs TOTP steps; the
 * registration rules under test only need a validly signed admin token.
 */
export async function startRegistration(
  name: string,
  env: Record<string, string> = {},
): Promise<RegistrationUnderTest> {
  const issuer = await TestTokenIssuer.start();
  const instance = await startExtraService('registration', {
    name,
    env: { ...env, ...issuer.env() },
  });
  const client = grpcClient('registration', instance.grpc);
  const db = new Client({
    connectionString: launcher.serviceEnv('registration', TEST_PROFILE).DATABASE_URL,
  });
  await db.connect();
  return {
    instance,
    client,
    issuer,
    db,
    as: (tenantId, roles = ['admin']) => issuer.metadata({ tenantId, roles }),
    close: async () => {
      client.close();
      await db.end();
      await instance.stop();
      await issuer.close();
    },
  };
}

let bus: KafkaEventBus | undefined;

/** Announces a new tenant the way auth does (tenant.created on Kafka) and waits for its CA. */
export async function newTenant(reg: RegistrationUnderTest): Promise<string> {
  const tenantId = randomUUID();
  bus ??= new KafkaEventBus({ brokers: [KAFKA_BROKERS], clientId: 'registration-e2e' });
  await bus.publish([
    createEvent(TenantCreated, tenantId, {
      tenantId,
      name: `t-${tenantId.slice(0, 8)}`,
      displayName: 'Test tenant',
    }),
  ]);
  await waitForDeviceCa(reg.client, tenantId, `the device CA of tenant ${tenantId}`);
  return tenantId;
}

export async function closeBus(): Promise<void> {
  await bus?.close();
  bus = undefined;
}

export async function joinToken(
  reg: RegistrationUnderTest,
  tenantId: string,
  options: { maxUses?: number; deviceNamePrefix?: string; ttlSeconds?: number } = {},
): Promise<{ token: string; joinTokenId: string }> {
  return createJoinToken(reg.client, tenantId, await reg.as(tenantId), {
    ...options,
    deviceNamePrefix: options.deviceNamePrefix ?? '',
  });
}

/** A device key made and held by WebCrypto, with its CSR (built by @peculiar/x509) and a transport key. */
export interface SoftwareDevice {
  keys: webcrypto.CryptoKeyPair;
  csrPem: string;
  transportPublicKey: string;
}

export async function softwareDevice(curve: 'P-256' | 'P-384' = 'P-256'): Promise<SoftwareDevice> {
  const { keys, csrPem, transportPublicKey } = await deviceMaterial({ curve });
  return { keys, csrPem, transportPublicKey };
}

/** A CSR made by the openssl CLI (not by our code), with the key it made. */
export function opensslCsr(keyArgs: string[]): { dir: string; csrPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-reg-'));
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', 'device.key'], {
    cwd: dir,
    stdio: 'pipe',
  });
  execFileSync(
    'openssl',
    ['req', '-new', '-key', 'device.key', '-subj', '/CN=laptop', '-out', 'device.csr'],
    {
      cwd: dir,
      stdio: 'pipe',
    },
  );
  return { dir, csrPem: readFileSync(join(dir, 'device.csr'), 'utf8') };
}

/** A RegisterDevice request with a join token (the shared one: a Linux laptop "LAPTOP-42"). */
export const registration = registerDeviceRequest;

export async function failure(
  promise: Promise<unknown>,
): Promise<{ code: number; reason?: string; message: string }> {
  const err = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  const md = (err as { metadata?: Metadata }).metadata;
  return {
    code: (err as { code: number }).code,
    reason: md?.get('latchkey-reason')[0]?.toString(),
    message: (err as Error).message,
  };
}
