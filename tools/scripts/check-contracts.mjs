#!/usr/bin/env node
// Checks the gRPC contracts (proto/ and the ts-proto output in libs/contracts/src/gen).
//
//   node tools/scripts/check-contracts.mjs             lint + regenerate-and-compare + typecheck
//   node tools/scripts/check-contracts.mjs --breaking  buf breaking against branch main
//
// Prints one line per step and exits non-zero on the first failure.
// Plain Node ESM, no dependencies beyond the repo's node_modules/.bin/buf and tsc.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GEN_DIR = 'libs/contracts/src/gen'; // must match `out:` in buf.gen.yaml
const BIN = join(ROOT, 'node_modules', '.bin');
const BUF = join(BIN, process.platform === 'win32' ? 'buf.cmd' : 'buf');
const TSC = join(BIN, process.platform === 'win32' ? 'tsc.cmd' : 'tsc');
const BASE_BRANCH = process.env.LATCHKEY_BREAKING_BASE || 'main';

let failed = false;

function ok(step, detail = '') {
  console.log(`ok    ${step}${detail ? ` (${detail})` : ''}`);
}

function fail(step, message) {
  failed = true;
  console.error(message.startsWith('\n') ? `FAIL  ${step}${message}` : `FAIL  ${step}: ${message}`);
}

function run(cmd, args, opts = {}) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', ...opts });
  const ms = Date.now() - t0;
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (r.error) return { ok: false, ms, output: `${cmd}: ${r.error.message}` };
  return { ok: r.status === 0, status: r.status, ms, output };
}

function indent(text) {
  return text
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
}

function requireTool(path, hint) {
  if (!existsSync(path)) {
    fail('setup', `${relative(ROOT, path)} not found — ${hint}`);
    process.exit(1);
  }
}

/** All files under dir, as paths relative to dir with forward slashes. */
function listFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

function git(args) {
  return run('git', args);
}

// ---------------------------------------------------------------------------
// buf breaking
// ---------------------------------------------------------------------------
function checkBreaking() {
  requireTool(BUF, 'run `npm install` (the binary comes from @bufbuild/buf)');
  const step = `buf breaking against branch ${BASE_BRANCH}`;
  if (!git(['rev-parse', '--git-dir']).ok) {
    fail(step, 'not inside a git repository');
    return;
  }
  if (!git(['rev-parse', '--verify', '--quiet', `refs/heads/${BASE_BRANCH}^{commit}`]).ok) {
    console.log(
      `skip  ${step}: branch ${BASE_BRANCH} has no commit yet (or does not exist locally), so there is nothing to compare against` +
        (git(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${BASE_BRANCH}^{commit}`]).ok
          ? ` — in a CI checkout run \`git branch ${BASE_BRANCH} origin/${BASE_BRANCH}\` first`
          : ''),
    );
    return;
  }
  const tree = git(['ls-tree', '-r', '--name-only', BASE_BRANCH, '--', 'buf.yaml', 'proto']);
  const files = tree.ok ? tree.output.split('\n').filter(Boolean) : [];
  if (!files.includes('buf.yaml') || !files.some((f) => f.endsWith('.proto'))) {
    console.log(
      `skip  ${step}: branch ${BASE_BRANCH} has no committed buf.yaml and proto/ files yet, so there is nothing to compare against`,
    );
    return;
  }
  const r = run(BUF, ['breaking', '--against', `.git#branch=${BASE_BRANCH}`]);
  if (r.ok) ok(step, `${r.ms} ms`);
  else fail(step, `breaking changes (or buf error):\n${indent(r.output)}`);
}

// ---------------------------------------------------------------------------
// lint + generated code up to date + typecheck
// ---------------------------------------------------------------------------
function checkLint() {
  const r = run(BUF, ['lint']);
  if (r.ok) ok('buf lint', `${r.ms} ms`);
  else fail('buf lint', `\n${indent(r.output)}`);
}

function checkGenerated() {
  const step = `generated code in ${GEN_DIR} is up to date`;
  const genYaml = readFileSync(join(ROOT, 'buf.gen.yaml'), 'utf8');
  if (!new RegExp(`^\\s*out:\\s*${GEN_DIR.replace(/[/.]/g, '\\$&')}\\s*$`, 'm').test(genYaml)) {
    fail(
      step,
      `buf.gen.yaml does not generate into ${GEN_DIR}; update GEN_DIR in ${relative(ROOT, fileURLToPath(import.meta.url))}`,
    );
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'latchkey-contracts-'));
  try {
    // --output is prepended to the template's `out`, so the fresh copy lands in <tmp>/<GEN_DIR>.
    const r = run(BUF, ['generate', '--output', tmp]);
    if (!r.ok) {
      fail(step, `buf generate failed:\n${indent(r.output)}`);
      return;
    }
    const freshDir = join(tmp, GEN_DIR);
    const committedDir = join(ROOT, GEN_DIR);
    const fresh = listFiles(freshDir);
    const committed = listFiles(committedDir);
    const all = [...new Set([...fresh, ...committed])].sort();
    const diffs = [];
    for (const f of all) {
      const inFresh = fresh.includes(f);
      const inCommitted = committed.includes(f);
      if (!inCommitted) diffs.push(`missing   ${GEN_DIR}/${f} (generation creates it)`);
      else if (!inFresh) diffs.push(`stale     ${GEN_DIR}/${f} (generation no longer creates it)`);
      else if (!readFileSync(join(freshDir, f)).equals(readFileSync(join(committedDir, f))))
        diffs.push(`differs   ${GEN_DIR}/${f}`);
    }
    if (fresh.length === 0) fail(step, 'buf generate produced no files');
    else if (diffs.length === 0) ok(step, `${fresh.length} files, regenerated in ${r.ms} ms`);
    else
      fail(
        step,
        `${diffs.length} file(s) out of date — run \`npx nx run contracts:generate\` (never edit generated code by hand):\n${indent(diffs.join('\n'))}`,
      );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function checkTypes() {
  const step = 'libs/contracts typechecks (strict)';
  const tmp = mkdtempSync(join(tmpdir(), 'latchkey-contracts-tsc-'));
  try {
    const tsconfig = join(tmp, 'tsconfig.json');
    writeFileSync(
      tsconfig,
      JSON.stringify(
        {
          extends: join(ROOT, 'tsconfig.base.json'),
          compilerOptions: {
            noEmit: true,
            incremental: false,
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules', '@types')],
          },
          include: [join(ROOT, 'libs/contracts/src/**/*.ts')],
        },
        null,
        2,
      ),
    );
    const r = run(TSC, ['-p', tsconfig]);
    if (r.ok) ok(step, `${r.ms} ms`);
    else fail(step, `\n${indent(r.output)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--breaking');
if (unknown.length) {
  console.error(
    `usage: node tools/scripts/check-contracts.mjs [--breaking] (unknown: ${unknown.join(' ')})`,
  );
  process.exit(2);
}

if (args.includes('--breaking')) {
  checkBreaking();
} else {
  requireTool(BUF, 'run `npm install` (the binary comes from @bufbuild/buf)');
  requireTool(
    join(BIN, 'protoc-gen-ts_proto'),
    'run `npm install` (the plugin comes from ts-proto)',
  );
  requireTool(TSC, 'run `npm install` (typescript)');
  checkLint();
  if (!failed) checkGenerated();
  if (!failed) checkTypes();
}

if (failed) process.exit(1);
