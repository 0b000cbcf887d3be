/**
 * Starts one more instance of a built service (from dist/) on free ports with
 * environment overrides, for tests that need a second instance, a crash
 * (SIGKILL) or a service pointed at its own topics or token issuer.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { launcher, LOG_DIR, TEST_PROFILE } from './environment';

export interface ExtraService {
  child: ChildProcess;
  http: string;
  grpc: string;
  /** SIGKILL: no graceful shutdown, no offset commit, nothing flushed. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
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

async function waitHttpReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`service exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready after ${timeoutMs} ms (${url})`);
}

export async function startExtraService(
  service: string,
  {
    name,
    env = {},
    timeoutMs = 60_000,
  }: { name: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<ExtraService> {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const child = launcher.startService(service, {
    profile: TEST_PROFILE,
    env: { ...env, HTTP_PORT: String(httpPort), GRPC_PORT: String(grpcPort) },
    logFile: join(LOG_DIR, `${service}-${name}.log`),
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const http = `http://127.0.0.1:${httpPort}`;
  const instance: ExtraService = {
    child,
    http,
    grpc: `127.0.0.1:${grpcPort}`,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: () => launcher.stopChild(child),
  };
  try {
    await waitHttpReady(http, child, timeoutMs);
  } catch (err) {
    await instance.kill();
    throw err;
  }
  return instance;
}
