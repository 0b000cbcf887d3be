#!/usr/bin/env node
// Compiles every app (the services and the device agent) and lib with tsc into dist/, copies the proto files the
// services load at run time, and links dist/node_modules/@latchkey/<lib> to the
// compiled lib so the workspace aliases resolve without a runtime path hook.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function build({ log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const started = Date.now();
  const tsc = spawnSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (tsc.status !== 0) throw new Error('build: tsc failed');
  // The device agent's CLI is a `bin` (root package.json and apps/agent/package.json).
  chmodSync(join(root, 'dist/apps/agent/src/main.js'), 0o755);
  rmSync(join(root, 'dist/proto'), { recursive: true, force: true });
  cpSync(join(root, 'proto'), join(root, 'dist/proto'), { recursive: true });
  const scope = join(root, 'dist/node_modules/@latchkey');
  rmSync(scope, { recursive: true, force: true });
  mkdirSync(scope, { recursive: true });
  for (const lib of readdirSync(join(root, 'libs')).filter((l) => l !== 'testing')) {
    symlinkSync(join('..', '..', 'libs', lib, 'src'), join(scope, lib), 'dir');
  }
  log(`build: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    build();
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
