/** Starts the four services once for all e2e suites (the stack is up already). */
import { mkdirSync, rmSync } from 'node:fs';
import { launcher, LOG_DIR, OTLP_PORT, SPANS_FILE, TEST_PROFILE, TMP_DIR } from './environment';
import { startOtlpCollector } from './otlp-collector';

export default async function globalSetup(): Promise<void> {
  rmSync(TMP_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });
  const collector = await startOtlpCollector(OTLP_PORT, SPANS_FILE);
  const services = await launcher.startAll({
    profile: TEST_PROFILE,
    logDir: LOG_DIR,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${OTLP_PORT}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
  });
  (globalThis as Record<string, unknown>).__latchkeyE2e = { collector, services };
}
