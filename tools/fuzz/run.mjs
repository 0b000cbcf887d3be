#!/usr/bin/env node
// Runs the fuzz suites (tools/fuzz/*.e2e-spec.ts: every RPC and HTTP route) and,
// with --isolation, the tenant-isolation matrix, on the real services of a test
// profile. `npm test` runs the same suites with LATCHKEY_FUZZ_RUNS small.
//
//   node tools/fuzz/run.mjs [--full | --runs N] [--apps auth,audit] [--grpc | --http]
//                           [--seed S] [--isolation] [--profile test-fuzz]
//
// --full = 10000 cases per RPC and per route (allow hours for all four services
// on 2 cores; --apps narrows it). Set-up (stack, databases, build) runs first.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root, setup } from '../scripts/setup.mjs';

const argv = process.argv.slice(2);
const has = (f) => argv.includes(f);
const val = (f) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : undefined;
};
const runs = has('--full') ? 10_000 : Number(val('--runs') ?? 100);
const profile = val('--profile') ?? process.env.LATCHKEY_TEST_PROFILE ?? 'test';
const suites = [
  ...(has('--http') ? [] : ['tools/fuzz/grpc-fuzz']),
  ...(has('--grpc') ? [] : ['tools/fuzz/http-fuzz']),
  ...(has('--isolation') ? ['tools/isolation'] : []),
];

await setup({ profile });
const t0 = Date.now();
const r = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules/jest/bin/jest.js'),
    '--ci',
    '--runInBand',
    '--selectProjects',
    'e2e',
    '--testPathPatterns',
    ...suites,
  ],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      LATCHKEY_TEST_PROFILE: profile,
      LATCHKEY_FUZZ_RUNS: String(runs),
      ...(val('--apps') ? { LATCHKEY_FUZZ_APPS: val('--apps') } : {}),
      ...(val('--seed') ? { LATCHKEY_FUZZ_SEED: val('--seed') } : {}),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    },
  },
);
console.log(
  `fuzz: ${runs} cases per RPC/route, ${val('--apps') ?? 'all services'}, ${((Date.now() - t0) / 60_000).toFixed(1)} min, exit ${r.status}`,
);
process.exit(r.status ?? 1);
