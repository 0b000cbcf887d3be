#!/usr/bin/env node
// Runs every benchmark of tools/bench, one after the other (they share the
// machine), and prints one table: each figure, its same-run baseline and the
// ratio. The benchmarks are run as they are; this script only reads what they
// print:
//   - registration, nonce, provisioning, sign-in, audit-ingest: their summary lines;
//   - any benchmark printing a line `BENCH_JSON {...}` (as sign-in.mjs does:
//     {"bench": "sign-in", "perSecond": 1234, "p99": 12.3, "floor": 5678, ...};
//     also read: "value", "unit", "p99Ms", "baseline", "baselineValue", and
//     "rows": more rows of the table, each {bench, value, unit, p99Ms?, baseline?,
//     baselineValue?}): that line. A new tools/bench/*.mjs is run (with --quick
//     under --quick) and read so; tools/bench/support/ and the helper modules
//     (proc-cpu) are not benchmarks.
//   - the soak (soak.mjs, minutes long) only with --soak (or `--only soak`), AFTER
//     the other benchmarks: its mixed ops/s, then per service a row "soak: <service>
//     RSS" with the RSS slope in MiB/h over the measured window, the RSS at the
//     window's start as its baseline, and as ratio the hourly growth as a share of
//     that start.
//
//   node tools/bench/all.mjs [--quick] [--only registration,nonce] [--json]
//                            [--soak [--minutes N]]
//
// --quick: short runs (5 s, 100,000 audit events, a 1-minute soak) to check that
// everything runs; the default durations are the benchmarks' own (the soak: 10
// minutes; --minutes N sets it). --soak --only soak runs the soak alone. --json:
// the table as JSON on the last line too. Exit status: 1 if a benchmark failed or
// printed nothing readable (the soak fails on any failed operation or dead service).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, setup } from '../scripts/setup.mjs';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? argv[onlyAt + 1].split(',') : undefined;
const minutesAt = argv.indexOf('--minutes');
const soakMinutes = minutesAt >= 0 ? argv[minutesAt + 1] : undefined;
/** The soak runs for minutes: only when asked for. */
const soak = argv.includes('--soak') || Boolean(only?.includes('soak'));
const num = (s) => Number(String(s).replace(/,/g, ''));

/** How to run and read the benchmarks whose output predates the JSON line. */
const KNOWN = {
  registration: {
    args: ['--no-setup', ...(quick ? ['--seconds', '5'] : [])],
    read: (out) => ({
      value: num(/RegisterDevice \(gRPC\):\s+([\d,.]+) registrations\/s/.exec(out)?.[1]),
      unit: 'registrations/s',
      p99Ms: num(/RegisterDevice[^\n]*p99 ([\d.]+) ms/.exec(out)?.[1]),
      baseline: 'crypto of one registration, one process',
      baselineValue: num(/crypto of one registration:\s+([\d,.]+) \/s/.exec(out)?.[1]),
    }),
  },
  nonce: {
    args: quick ? ['--seconds', '5'] : [],
    read: (out) => ({
      value: num(/GetNonce\+ConsumeNonce:\s+([\d,.]+) pairs\/s/.exec(out)?.[1]),
      unit: 'nonce pairs/s',
      p99Ms: num(/GetNonce\+ConsumeNonce:[^\n]*p99 ([\d.]+) ms/.exec(out)?.[1]),
      baseline: 'raw Redis SET EX NX + GETDEL',
      baselineValue: num(/raw Redis[^:]*:\s+([\d,.]+) pairs\/s/.exec(out)?.[1]),
    }),
  },
  provisioning: {
    args: quick ? ['32', '5', '--no-setup'] : ['32', '10', '--no-setup'],
    read: (out) => ({
      value: num(/-> ([\d,.]+) provisionings\/s/.exec(out)?.[1]),
      unit: 'provisionings/s',
      p99Ms: num(/p99 ([\d.]+) ms/.exec(out)?.[1]),
      baseline: 'crypto of one provisioning, one process',
      baselineValue: num(/crypto floor[^:]*:\s+([\d,.]+) provisionings\/s/.exec(out)?.[1]),
    }),
  },
  'sign-in': {
    args: ['--no-setup', ...(quick ? ['--seconds', '5'] : [])],
    read: (out) => ({
      value: num(/GetNonce\+SignInWithKey:\s+([\d,.]+) sign-ins\/s/.exec(out)?.[1]),
      unit: 'sign-ins/s',
      p99Ms: num(/SignInWithKey:[^\n]*p99 ([\d.]+) ms/.exec(out)?.[1]),
      baseline: 'crypto floor, one process',
      baselineValue: num(/crypto floor[^:]*:\s+([\d,.]+) sign-ins\/s/.exec(out)?.[1]),
    }),
  },
  'audit-ingest': {
    args: ['--skip-build', ...(quick ? ['--events', '100000'] : [])],
    read: (out) => ({
      value: num(/audit stored \+ chained\s+: ([\d,.]+) events\/s/.exec(out)?.[1]),
      unit: 'events/s stored + chained',
      p99Ms: undefined,
      baseline: 'raw kafkajs consume',
      baselineValue: num(/raw kafkajs consume \(baseline\) : ([\d,.]+) events\/s/.exec(out)?.[1]),
    }),
  },
};

/**
 * Not found by the directory scan: this script, the start-up benchmark (no throughput),
 * the helper module proc-cpu, and the soak (run only with --soak, see SOAK_ARGS).
 */
const NOT_IN_TABLE = new Set(['all', 'startup', 'proc-cpu', 'soak']);

/** The soak's arguments (it prints a BENCH_JSON line with a row per service). */
const SOAK_ARGS = [
  '--no-setup',
  ...(soakMinutes ? ['--minutes', soakMinutes] : quick ? ['--quick'] : []),
];

/**
 * The machine-readable line a benchmark may print, `BENCH_JSON {...}` (the last one
 * counts), with `perSecond` or `value`, `p99` or `p99Ms`, and `floor` or
 * `baselineValue` (+ `baseline`, what it is) — as tools/bench/sign-in.mjs does.
 */
function benchJson(out) {
  const line = out
    .split('\n')
    .filter((l) => l.startsWith('BENCH_JSON '))
    .pop();
  if (!line) return undefined;
  try {
    const v = JSON.parse(line.slice('BENCH_JSON '.length));
    const value = v.perSecond ?? v.value;
    if (typeof value !== 'number') return undefined;
    const baselineValue = v.floor ?? v.baselineValue;
    return {
      value,
      unit: v.unit ?? `${v.bench ?? 'operations'}/s`,
      p99Ms: v.p99 ?? v.p99Ms,
      baseline: v.baseline ?? (v.floor !== undefined ? 'crypto floor, one process' : undefined),
      baselineValue,
      rows: Array.isArray(v.rows)
        ? v.rows.filter((r) => typeof r?.bench === 'string' && typeof r.value === 'number')
        : undefined,
    };
  } catch {
    return undefined;
  }
}

/** The figures of benchmark `name` from its output (BENCH_JSON line first, then its summary). */
export function readFigures(name, out) {
  const json = benchJson(out);
  const known = KNOWN[name]?.read(out);
  return json ? { ...json, unit: known?.unit ?? json.unit } : known;
}

async function main() {
  const benches = readdirSync(join(root, 'tools/bench'), { withFileTypes: true })
    .filter((f) => f.isFile() && f.name.endsWith('.mjs'))
    .map((f) => f.name.slice(0, -4))
    .filter((name) => !NOT_IN_TABLE.has(name) && (!only || only.includes(name)))
    .sort((a, b) => (a in KNOWN ? 0 : 1) - (b in KNOWN ? 0 : 1) || a.localeCompare(b));
  if (soak) benches.push('soak');

  await setup({ profile: 'bench' });
  const rows = [];
  for (const name of benches) {
    const known = KNOWN[name];
    const args = name === 'soak' ? SOAK_ARGS : (known?.args ?? (quick ? ['--quick'] : []));
    process.stderr.write(`[bench] ${name} ${args.join(' ')}\n`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(root, 'tools/bench', `${name}.mjs`), ...args], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const out = r.stdout ?? '';
    process.stdout.write(out);
    const fig = readFigures(name, out);
    const ok = r.status === 0 && fig && Number.isFinite(fig.value);
    if (!ok)
      process.stderr.write(
        `[bench] ${name} failed (exit ${r.status})\n${(r.stderr ?? '').slice(-2000)}\n`,
      );
    rows.push({
      bench: name,
      ok: Boolean(ok),
      value: fig?.value,
      unit: fig?.unit ?? '',
      p99Ms: Number.isFinite(fig?.p99Ms) ? fig.p99Ms : undefined,
      baseline: fig?.baseline,
      baselineValue: Number.isFinite(fig?.baselineValue) ? fig.baselineValue : undefined,
      ratio:
        Number.isFinite(fig?.value) && Number.isFinite(fig?.baselineValue) && fig.baselineValue > 0
          ? fig.value / fig.baselineValue
          : undefined,
      seconds: (Date.now() - t0) / 1000,
    });
    const ratioOf = (r) =>
      Number.isFinite(r.value) && Number.isFinite(r.baselineValue) && r.baselineValue > 0
        ? r.value / r.baselineValue
        : undefined;
    for (const extra of fig?.rows ?? [])
      rows.push({
        bench: extra.bench,
        ok: Boolean(ok),
        value: extra.value,
        unit: extra.unit ?? '',
        p99Ms: Number.isFinite(extra.p99Ms) ? extra.p99Ms : undefined,
        baseline: extra.baseline,
        baselineValue: Number.isFinite(extra.baselineValue) ? extra.baselineValue : undefined,
        ratio: ratioOf(extra),
        seconds: undefined,
      });
  }

  // Figures under 100 keep a decimal (the soak's MiB/h, a slow benchmark's ops/s).
  const f0 = (x) =>
    x === undefined || !Number.isFinite(x)
      ? '–'
      : Math.abs(x) < 100 && !Number.isInteger(x)
        ? x.toFixed(1)
        : Math.round(x).toLocaleString('en-US');
  const table = [
    ['benchmark', 'figure', 'unit', 'p99 ms', 'same-run baseline', 'baseline', 'ratio', 'run s'],
    ...rows.map((r) => [
      r.ok ? r.bench : `${r.bench} (FAILED)`,
      f0(r.value),
      r.unit,
      r.p99Ms === undefined ? '–' : r.p99Ms.toFixed(1),
      r.baseline ?? '(none printed)',
      f0(r.baselineValue),
      r.ratio === undefined ? '–' : `${(r.ratio * 100).toFixed(0)}%`,
      r.seconds === undefined ? '' : r.seconds.toFixed(0),
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => String(row[i]).length)));
  const line = (row) => `| ${row.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log(`\nall benchmarks${quick ? ' (--quick)' : ''}, one after the other on this machine:`);
  console.log(line(table[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table.slice(1)) console.log(line(row));
  if (argv.includes('--json')) console.log(JSON.stringify(rows));
  process.exit(rows.every((r) => r.ok) && rows.length > 0 ? 0 : 1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
