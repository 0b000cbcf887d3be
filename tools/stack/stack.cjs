'use strict';
// CommonJS front for tools/stack/stack.mjs, for code that cannot import ESM
// (e.g. jest tests running in CommonJS mode). Each call runs the CLI in a child
// process, so it behaves exactly like `node tools/stack/stack.mjs <command>`.
//
//   const { stopKafka, startKafka } = require('../../tools/stack/stack.cjs');
//   await stopKafka(); /* ... */ await startKafka();

const { spawn } = require('node:child_process');
const path = require('node:path');

const CLI = path.join(__dirname, 'stack.mjs');

function runCli(args, { log, timeoutMs = 10 * 60_000 } = {}) {
  const emit = log || ((line) => process.stderr.write(`${line}\n`));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let errText = '';
    let partial = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      errText += d;
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      for (const line of lines) emit(line.replace(/^\[stack\] /, ''));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial) emit(partial);
      if (code === 0) resolve(stdout);
      else {
        const msg = errText.trim().split('\n').slice(-45).join('\n');
        reject(new Error(`stack ${args.join(' ')} failed (exit ${code})${msg ? `:\n${msg}` : ''}`));
      }
    });
  });
}

module.exports = {
  up: async (opts) => {
    await runCli(['up'], opts);
  },
  down: async (opts) => {
    await runCli(['down'], opts);
  },
  status: async () => JSON.parse(await runCli(['status', '--json'], { log: () => {} })),
  startKafka: async (opts) => {
    await runCli(['kafka-start'], opts);
  },
  stopKafka: async (opts) => {
    await runCli(['kafka-stop'], opts);
  },
};
