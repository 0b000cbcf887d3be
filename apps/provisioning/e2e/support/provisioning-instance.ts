/**
 * An extra provisioning process of the test profile whose tokens come from a
 * TestTokenIssuer (same database, Redis, Kafka and registration as the one
 * the harness started).
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface ProvisioningInstance {
  grpcAddress: string;
  httpBase: string;
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`provisioning exited with ${child.exitCode}`);
    const ok = await fetch(url)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`provisioning not ready at ${url}`);
}

/** The parts of libs/testing's launcher this needs (passed in: support code may not import test libs). */
export interface Launcher {
  startService(
    service: string,
    options: { profile?: string; env?: Record<string, string>; logFile?: string },
  ): ChildProcess;
  stopChild(child: ChildProcess): Promise<void>;
}

export async function startProvisioning(
  launcher: Launcher,
  logDir: string,
  profile: string,
  issuer: { issuer: string; jwksUrl: string },
  ports: { http: number; grpc: number },
  env: Record<string, string> = {},
): Promise<ProvisioningInstance> {
  const child = launcher.startService('provisioning', {
    profile,
    logFile: join(logDir, `provisioning-${ports.grpc}.log`),
    env: {
      AUTH_ISSUER: issuer.issuer,
      AUTH_JWKS_URL: issuer.jwksUrl,
      HTTP_PORT: String(ports.http),
      GRPC_PORT: String(ports.grpc),
      ...env,
    },
  });
  const httpBase = `http://127.0.0.1:${ports.http}`;
  try {
    await waitReady(`${httpBase}/readyz`, child);
  } catch (err) {
    await launcher.stopChild(child);
    throw err;
  }
  return {
    grpcAddress: `127.0.0.1:${ports.grpc}`,
    httpBase,
    stop: () => launcher.stopChild(child),
  };
}
