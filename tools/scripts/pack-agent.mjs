#!/usr/bin/env node
// Packs the device agent as a standalone npm package (latchkey-agent): stages
// apps/agent/package.json, the compiled agent, the protos and the two workspace
// libraries it imports (bundled as node_modules/@latchkey/*), then runs `npm pack`.
//
//   node tools/scripts/pack-agent.mjs [--dry-run] [--out <dir>]   (after node tools/scripts/build.mjs)
//
// Prints npm pack's JSON report (file list, size) on stdout.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Stages the package in `stage` (dist/packages/latchkey-agent by default) and returns its path. */
export function stageAgentPackage(stage = join(root, 'dist/packages/latchkey-agent')) {
  const built = join(root, 'dist/apps/agent/src/main.js');
  if (!existsSync(built)) throw new Error('pack-agent: build first (node tools/scripts/build.mjs)');
  const manifest = JSON.parse(readFileSync(join(root, 'apps/agent/package.json'), 'utf8'));
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const jsOnly = (src) => !/\.(map|tsbuildinfo)$/.test(src);
  cpSync(join(root, 'dist/apps/agent/src'), join(stage, 'dist/apps/agent/src'), {
    recursive: true,
    filter: jsOnly,
  });
  // contracts' PROTO_ROOT is ../../../proto from the library: <package>/proto.
  cpSync(join(root, 'proto'), join(stage, 'proto'), { recursive: true });
  for (const lib of manifest.bundleDependencies) {
    const name = lib.replace('@latchkey/', '');
    const into = join(stage, 'node_modules', lib);
    cpSync(join(root, 'dist/libs', name, 'src'), into, { recursive: true, filter: jsOnly });
    writeFileSync(
      join(into, 'package.json'),
      `${JSON.stringify({ name: lib, version: manifest.dependencies[lib], main: 'index.js', license: manifest.license }, null, 2)}\n`,
    );
  }
  return stage;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { 'dry-run': { type: 'boolean', default: false }, out: { type: 'string' } },
  });
  try {
    const stage = stageAgentPackage();
    const out = resolve(values.out ?? join(root, 'dist/packages'));
    mkdirSync(out, { recursive: true });
    const args = ['pack', '--json', '--pack-destination', out];
    if (values['dry-run']) args.push('--dry-run');
    const r = spawnSync('npm', args, { cwd: stage, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
    process.stdout.write(r.stdout);
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
