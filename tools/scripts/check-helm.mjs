#!/usr/bin/env node
// Runs the Helm chart's tests on their own: `node tools/scripts/check-helm.mjs`.
// The tests themselves are jest specs in tools/helm/ (helm lint + template over
// three value sets, Kubernetes schema validation, security/probe/hook/NetworkPolicy
// assertions, invalid values, and the chart-vs-config drift check); `npm test`
// runs them with the other unit tests, so this script is only a shortcut.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const r = spawnSync(
  process.execPath,
  [
    join(ROOT, 'node_modules/jest/bin/jest.js'),
    '--selectProjects',
    'unit',
    '--testPathPatterns',
    'tools/helm/',
    ...process.argv.slice(2),
  ],
  { cwd: ROOT, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
