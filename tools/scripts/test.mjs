#!/usr/bin/env node
// `npm test`: the set-up, the static checks, every jest suite (unit and e2e),
// then one line `N passed, N failed` summing all of them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { root, setup } from './setup.mjs';

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

  const out = join(root, 'tmp/jest-results.json');
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
      ...process.argv.slice(2),
    ],
    { cwd: root, stdio: 'inherit', env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' } },
  );
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
          failures.push(`${s.name.replace(root + '/', '')}: ${a.fullName}`);
    for (const s of broken) failures.push(`${s.name.replace(root + '/', '')}: suite failed to run`);
  } else {
    failed++;
    failures.push(`jest did not report results (exit ${jest.status})`);
  }
  if (failures.length) console.log(`\nFailures:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

void main();
