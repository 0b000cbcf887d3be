#!/usr/bin/env node
// `npm test`: the set-up, the static checks, every jest suite (unit and e2e),
// then one line `N passed, N failed` summing all of them. Arguments go to jest.
//
// `npm run test:full` (--full, not passed to jest): all of that, then the long
// versions, counted in the same final line:
//   - the fuzz suites (tools/fuzz) at 10,000 cases per RPC and route, one more jest
//     run (LATCHKEY_FUZZ_RUNS=10000, as `node tools/fuzz/run.mjs --full`): its tests;
//   - the chaos suite, `node tools/chaos/run.mjs --full`: each `VERDICT <scenario>
//     PASS|FAIL` line it prints is one test (a non-zero exit without a FAIL verdict,
//     no verdict at all, or no tools/chaos/run.mjs, is one failure);
//   - the benchmarks and the 10-minute soak, `node tools/bench/all.mjs --soak`: one
//     test, by its exit status.
// Allow hours. LATCHKEY_TEST_FULL_SMOKE=1 runs the long versions short, to check
// this plumbing: fuzz at 15 cases (narrow it with LATCHKEY_FUZZ_APPS=audit), chaos
// without --full, `all.mjs --soak --only soak --quick` (a 1-minute soak); jest
// arguments (e.g. a test path) narrow the `npm test` part as they do for `npm test`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { root, setup } from './setup.mjs';

const argv = process.argv.slice(2);
const full = argv.includes('--full');
const jestArgs = argv.filter((a) => a !== '--full');
const smoke = full && process.env.LATCHKEY_TEST_FULL_SMOKE === '1';

let passed = 0;
let failed = 0;
const failures = [];

function check(name, cmd, args) {
  const t = Date.now();
  const r = spawnSync(cmd, args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false' },
  });
  const secs = ((Date.now() - t) / 1000).toFixed(1);
  if (r.status === 0) {
    passed++;
    console.log(`PASS check ${name} (${secs} s)`);
  } else {
    failed++;
    failures.push(`check ${name}`);
    console.log(`FAIL check ${name} (${secs} s)\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
}

function bin(pkg, file) {
  return join(root, 'node_modules', pkg, file);
}

/** One jest run (every suite in one process) whose tests are counted; `label` names a later run. */
function jestRun(args, { env = {}, results = 'jest-results.json', label = '' } = {}) {
  const node = process.execPath;
  const out = join(root, 'tmp', results);
  mkdirSync(join(root, 'tmp'), { recursive: true });
  rmSync(out, { force: true });
  const jest = spawnSync(
    node,
    [
      // Every suite runs in this one process (--runInBand) and jest's module registries grow
      // with each: give it room beyond V8's 4 GiB default, and print the heap per suite.
      '--max-old-space-size=8192',
      bin('jest', 'bin/jest.js'),
      '--logHeapUsage',
      '--ci',
      '--runInBand',
      '--json',
      `--outputFile=${out}`,
      ...args,
    ],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1', ...env },
    },
  );
  const prefix = label ? `(${label}) ` : '';
  if (existsSync(out)) {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    // A suite that failed to run at all (syntax error, setup failure) counts as a failure.
    const broken = r.testResults.filter(
      (s) => s.status === 'failed' && s.assertionResults.length === 0,
    );
    failed += broken.length;
    for (const s of r.testResults)
      for (const a of s.assertionResults)
        if (a.status === 'failed')
          failures.push(`${prefix}${s.name.replace(root + '/', '')}: ${a.fullName}`);
    for (const s of broken)
      failures.push(`${prefix}${s.name.replace(root + '/', '')}: suite failed to run`);
  } else {
    failed++;
    failures.push(`${prefix}jest did not report results (exit ${jest.status})`);
  }
}

/** Runs a long command, its output shown as it comes; resolves with its status and stdout. */
function stream(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.on('error', (err) => resolve({ status: null, out: `${out}\n${err.message}` }));
    child.on('close', (status) => resolve({ status, out }));
  });
}

/** The long versions of `npm run test:full` (see the header). */
async function longVersions() {
  const fuzzRuns = smoke ? '15' : '10000';
  console.log(`\n== fuzz suites, ${fuzzRuns} cases per RPC and route`);
  jestRun(
    [
      '--selectProjects',
      'e2e',
      '--testPathPatterns',
      'tools/fuzz/grpc-fuzz',
      'tools/fuzz/http-fuzz',
    ],
    {
      env: { LATCHKEY_FUZZ_RUNS: fuzzRuns },
      results: 'jest-results-fuzz-full.json',
      label: `fuzz ${fuzzRuns}`,
    },
  );

  const chaosArgs = ['tools/chaos/run.mjs', ...(smoke ? [] : ['--full'])];
  console.log(`\n== chaos: node ${chaosArgs.join(' ')}`);
  if (!existsSync(join(root, 'tools/chaos/run.mjs'))) {
    failed++;
    failures.push(
      'chaos: tools/chaos/run.mjs does not exist (the chaos suite is not in this tree)',
    );
    console.log('FAIL chaos: tools/chaos/run.mjs does not exist');
  } else {
    const t = Date.now();
    const chaos = await stream(chaosArgs);
    const verdicts = [...chaos.out.matchAll(/^VERDICT (\S+) (PASS|FAIL)\b.*$/gm)];
    for (const [line, scenario, verdict] of verdicts)
      if (verdict === 'PASS') passed++;
      else {
        failed++;
        failures.push(`chaos ${scenario}: ${line}`);
      }
    const secs = ((Date.now() - t) / 1000).toFixed(1);
    if (!verdicts.length) {
      failed++;
      failures.push(`chaos: no VERDICT line (exit ${chaos.status})`);
    } else if (chaos.status !== 0 && verdicts.every((v) => v[2] === 'PASS')) {
      failed++;
      failures.push(`chaos: exit ${chaos.status} although every verdict passed`);
    }
    console.log(`chaos: ${verdicts.length} verdicts, exit ${chaos.status} (${secs} s)`);
  }

  const benchArgs = [
    'tools/bench/all.mjs',
    '--soak',
    ...(smoke ? ['--only', 'soak', '--quick'] : []),
  ];
  console.log(`\n== benchmarks: node ${benchArgs.join(' ')}`);
  const t = Date.now();
  const bench = await stream(benchArgs);
  const secs = ((Date.now() - t) / 1000).toFixed(1);
  if (bench.status === 0) {
    passed++;
    console.log(`PASS bench ${benchArgs.slice(1).join(' ')} (${secs} s)`);
  } else {
    failed++;
    failures.push(`bench ${benchArgs.slice(1).join(' ')} (exit ${bench.status})`);
    console.log(`FAIL bench ${benchArgs.slice(1).join(' ')} (exit ${bench.status}, ${secs} s)`);
  }
}

async function main() {
  try {
    await setup({ profile: process.env.LATCHKEY_TEST_PROFILE ?? 'test' });
  } catch (err) {
    console.error(`set-up failed: ${err.message}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const node = process.execPath;
  check('contracts (buf lint, generated code up to date)', node, [
    'tools/scripts/check-contracts.mjs',
  ]);
  // The Helm chart's checks are jest specs (tools/helm/*.spec.ts): they run with the unit tests below.
  check('tsc --noEmit (strict)', node, [
    bin('typescript', 'bin/tsc'),
    '--noEmit',
    '-p',
    'tsconfig.json',
  ]);
  check('eslint (with module boundaries)', node, [
    bin('eslint', 'bin/eslint.js'),
    '--max-warnings=0',
    '.',
  ]);
  check('prettier --check', node, [bin('prettier', 'bin/prettier.cjs'), '--check', '.']);

  jestRun(jestArgs);
  if (full) await longVersions();
  if (failures.length) console.log(`\nFailures:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

void main();
