#!/usr/bin/env node
// Start-up benchmark: for each service, time from spawn to /readyz = 200 and
// resident memory once ready, median of RUNS cold starts. Baseline, measured
// in the same run: a bare Node.js HTTP server's spawn-to-first-response.
// Target (issue #2): every service ready within 5 s once the stack is up.
//   node tools/bench/startup.mjs [runs=5]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { setup } from '../scripts/setup.mjs';

const require = createRequire(import.meta.url);
const RUNS = Number(process.argv[2] ?? 5);
const TARGET_MS = 5000;
const PROFILE = 'bench';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function ok(url) {
  return new Promise((resolve) => {
    http
      .get(url, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
      .on('error', () => resolve(false));
  });
}

async function timeToReady(start, url, stop) {
  const t0 = performance.now();
  const child = start();
  while (!(await ok(url))) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    if (performance.now() - t0 > 30000) throw new Error('not ready in 30 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - t0;
  const rss = rssMiB(child.pid);
  await stop(child);
  return { ms, rss };
}

async function main() {
  await setup({ profile: 'dev' });
  const { catalog, ports, startService, stopChild } = require('../scripts/services.cjs');
  const baselineRuns = [];
  for (let i = 0; i < RUNS; i++) {
    baselineRuns.push(
      await timeToReady(
        () =>
          spawn(process.execPath, [
            '-e',
            "require('http').createServer((q,s)=>s.end('ok')).listen(18777,'127.0.0.1')",
          ]),
        'http://127.0.0.1:18777/',
        (c) => stopChild(c),
      ),
    );
  }
  const base = median(baselineRuns.map((r) => r.ms));
  const baseRss = median(baselineRuns.map((r) => r.rss));
  console.log(
    `baseline (bare node http server): ready ${base.toFixed(0)} ms, rss ${baseRss.toFixed(1)} MiB`,
  );
  console.log('service        ready median (min-max)      ratio   rss median   target <5000 ms');
  let failed = false;
  for (const { name } of catalog.services) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      runs.push(
        await timeToReady(
          () => startService(name, { profile: PROFILE, logFile: `tmp/bench/${name}.log` }),
          `http://127.0.0.1:${ports(name, PROFILE).http}/readyz`,
          (c) => stopChild(c),
        ),
      );
    }
    const ms = runs.map((r) => r.ms);
    const med = median(ms);
    const pass = med < TARGET_MS;
    failed ||= !pass;
    console.log(
      `${name.padEnd(14)} ${med.toFixed(0).padStart(6)} ms (${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)})`.padEnd(
        42,
      ) +
        `${(med / base).toFixed(1).padStart(5)}x  ${median(runs.map((r) => r.rss))
          .toFixed(1)
          .padStart(7)} MiB   ${pass ? 'ok' : 'OVER'}`,
    );
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
