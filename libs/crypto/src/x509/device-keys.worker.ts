/**
 * Worker-thread side of DeviceKeyChecker: checks the keys of device requests off
 * the service's main thread. Receives batches of jobs and answers each batch with
 * one message (outcomes in job order). Holds no secrets: CSRs and public keys only.
 */
import { parentPort } from 'node:worker_threads';
import { type DeviceKeysJob, type DeviceKeysOutcome, outcomeOf } from './device-keys';

if (!parentPort) throw new Error('device-keys.worker must run in a worker thread');
const port = parentPort;

port.on('message', async (batch: { id: number; jobs: DeviceKeysJob[] }) => {
  const outcomes: DeviceKeysOutcome[] = [];
  for (const job of batch.jobs) outcomes.push(await outcomeOf(job));
  port.postMessage({ id: batch.id, outcomes });
});
