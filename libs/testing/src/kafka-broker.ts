/** Stops and restarts the real local Kafka broker, for tests about its failure only. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './environment';

const run = promisify(execFile);

async function stack(command: 'kafka-stop' | 'kafka-start'): Promise<void> {
  await run(process.execPath, [join(REPO_ROOT, 'tools/stack/stack.mjs'), command], {
    cwd: REPO_ROOT,
    timeout: 180_000,
  });
}

export const stopKafkaBroker = () => stack('kafka-stop');
export const startKafkaBroker = () => stack('kafka-start');
