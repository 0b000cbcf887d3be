import type { Server } from 'node:http';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as Record<string, unknown>).__latchkeyE2e as
    { collector: Server; services: { stop(): Promise<void> } } | undefined;
  await state?.services.stop();
  state?.collector.closeAllConnections();
  await new Promise((r) => state?.collector.close(r));
}
