#!/usr/bin/env node
// Checks the Helm chart in deploy/helm/latchkey without a cluster:
//   1. helm lint --strict
//   2. helm template with default values: one ConfigMap, Deployment and Service per
//      service, with the probes, security context and DATABASE_URL-from-Secret wiring
//   3. helm template with one service disabled: that service is gone, the others stay
//   4. the values schema rejects a literal DATABASE_URL in the values
// Prints one line per step; exits non-zero on failure. No npm dependencies: the
// rendered YAML is inspected with a few regular expressions, which is enough for
// the chart's own, predictable output.
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helmBin } from './helm-bin.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = 'deploy/helm/latchkey';
const RELEASE = 'check';
const SERVICES = ['registration', 'provisioning', 'auth', 'audit'];

let failures = 0;

function ok(step, detail = '') {
  console.log(`ok    ${step}${detail ? ` (${detail})` : ''}`);
}

function fail(step, problems) {
  failures++;
  const list = Array.isArray(problems) ? problems : [problems];
  console.error(`FAIL  ${step}:\n${list.map((p) => `      - ${p}`).join('\n')}`);
}

function helm(bin, args) {
  const t0 = Date.now();
  const r = spawnSync(bin, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return {
    ok: !r.error && r.status === 0,
    stdout: r.stdout ?? '',
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim(),
    ms: Date.now() - t0,
  };
}

/** Splits a multi-document YAML stream into { kind, name, component, text } objects. */
function parseDocs(yaml) {
  return yaml
    .split(/^---\s*$/m)
    .map((text) => text.replace(/^\s*#.*$/gm, '').trim())
    .filter(Boolean)
    .map((text) => ({
      kind: text.match(/^kind:\s*(\S+)/m)?.[1],
      name: text.match(/^metadata:\s*\n\s+name:\s*(\S+)/m)?.[1],
      component: text.match(/^\s+app\.kubernetes\.io\/component:\s*(\S+)/m)?.[1],
      text,
    }));
}

/** Returns the indented block that follows `key:` (e.g. "livenessProbe"), or ''. */
function block(text, key) {
  const m = text.match(new RegExp(`^(\\s*)${key}:\\s*\\n((?:\\1\\s+.*\\n?)*)`, 'm'));
  return m ? m[2] : '';
}

/** Problems with the rendered manifests, expecting exactly the `expected` services. */
function checkManifests(docs, expected) {
  const problems = [];
  const byKind = (kind) => docs.filter((d) => d.kind === kind);
  for (const kind of ['Deployment', 'Service', 'ConfigMap']) {
    const got = byKind(kind)
      .map((d) => d.component)
      .sort();
    const want = [...expected].sort();
    if (got.join() !== want.join())
      problems.push(
        `expected ${want.length} ${kind}s (${want.join(', ')}), got ${got.length} (${got.join(', ') || 'none'})`,
      );
  }
  const unknown = docs.filter((d) => !['Deployment', 'Service', 'ConfigMap'].includes(d.kind));
  for (const d of unknown)
    problems.push(`unexpected ${d.kind ?? 'document without kind'} ${d.name ?? ''}`);

  for (const d of byKind('Deployment')) {
    const where = `Deployment ${d.name}`;
    const probes = {
      startupProbe: '/healthz',
      livenessProbe: '/healthz',
      readinessProbe: '/readyz',
    };
    for (const [probe, path] of Object.entries(probes)) {
      const b = block(d.text, probe);
      if (!b) problems.push(`${where}: no ${probe}`);
      else if (!new RegExp(`path:\\s*${path}\\s*$`, 'm').test(b) || !/port:\s*http\s*$/m.test(b))
        problems.push(`${where}: ${probe} is not GET ${path} on the http port`);
    }
    const checks = [
      [/^\s+runAsNonRoot:\s*true\s*$/m, 'runAsNonRoot: true'],
      [/^\s+readOnlyRootFilesystem:\s*true\s*$/m, 'readOnlyRootFilesystem: true'],
      [/^\s+allowPrivilegeEscalation:\s*false\s*$/m, 'allowPrivilegeEscalation: false'],
      [/^\s+drop:\s*\n\s+-\s+ALL\s*$/m, 'capabilities.drop: [ALL]'],
      [/seccompProfile:\s*\n\s+type:\s*RuntimeDefault/, 'seccompProfile RuntimeDefault'],
      [
        /-\s+name:\s*DATABASE_URL\s*\n\s+valueFrom:\s*\n\s+secretKeyRef:/,
        'DATABASE_URL from a secretKeyRef',
      ],
      [/-\s+configMapRef:\s*\n\s+name:\s*\S+/, 'envFrom its ConfigMap'],
      [/containerPort:\s*\d+/, 'container ports'],
    ];
    for (const [re, what] of checks)
      if (!re.test(d.text)) problems.push(`${where}: missing ${what}`);
    if (d.component && !new RegExp(`image:\\s*"?ghcr\\.io/latchkey/${d.component}:`).test(d.text))
      problems.push(`${where}: image is not ghcr.io/latchkey/${d.component}:<tag>`);
  }
  for (const d of byKind('Service')) {
    if (!/-\s+name:\s*http\b/.test(d.text) || !/-\s+name:\s*grpc\b/.test(d.text))
      problems.push(`Service ${d.name}: needs both an http and a grpc port`);
  }
  for (const d of byKind('ConfigMap')) {
    if (/^\s+DATABASE_URL:/m.test(d.text))
      problems.push(`ConfigMap ${d.name}: contains DATABASE_URL (must come from a Secret)`);
    for (const key of ['NODE_ENV', 'HTTP_PORT', 'GRPC_PORT', 'KAFKA_BROKERS', 'HOST'])
      if (!new RegExp(`^\\s+${key}:`, 'm').test(d.text))
        problems.push(`ConfigMap ${d.name}: missing ${key}`);
  }
  return problems;
}

async function main() {
  let bin;
  try {
    bin = await helmBin();
  } catch (e) {
    fail('find helm', e.message);
    return;
  }

  const lint = helm(bin, ['lint', '--strict', CHART]);
  if (lint.ok) ok(`helm lint --strict ${CHART}`, `${lint.ms} ms`);
  else fail(`helm lint --strict ${CHART}`, lint.output.split('\n'));

  const scenarios = [
    { label: 'default values', args: [], expected: SERVICES },
    {
      label: 'with services.audit.enabled=false',
      args: ['--set', 'services.audit.enabled=false'],
      expected: SERVICES.filter((s) => s !== 'audit'),
    },
  ];
  for (const s of scenarios) {
    const step = `helm template (${s.label}) renders ${s.expected.length} Deployments/Services/ConfigMaps with probes and hardening`;
    const r = helm(bin, ['template', RELEASE, CHART, ...s.args]);
    if (!r.ok) {
      fail(step, r.output.split('\n'));
      continue;
    }
    const docs = parseDocs(r.stdout);
    const problems = checkManifests(docs, s.expected);
    if (problems.length === 0) ok(step, `${docs.length} documents, ${r.ms} ms`);
    else fail(step, problems);
  }

  const step = 'values schema rejects a literal DATABASE_URL in commonEnv';
  const bad = helm(bin, [
    'template',
    RELEASE,
    CHART,
    '--set',
    'commonEnv.DATABASE_URL=postgres://u:p@db/x',
  ]);
  if (!bad.ok && /DATABASE_URL/.test(bad.output)) ok(step);
  else
    fail(step, bad.ok ? 'helm template accepted it' : `failed for another reason: ${bad.output}`);
}

await main();
if (failures) {
  console.error(`check-helm: ${failures} check(s) failed`);
  process.exit(1);
}
