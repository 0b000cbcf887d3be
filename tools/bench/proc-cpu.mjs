// CPU time of a child process, for benchmarks: CPU per operation does not depend
// on what else a shared machine runs, where operations per second do.
import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds (user + system) the child process has used so far (Linux /proc), or NaN. */
export function childCpuSeconds(child) {
  if (!child?.pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ)
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) of one process by pid (Linux /proc), or NaN. */
export function pidCpuSeconds(pid) {
  return childCpuSeconds({ pid });
}

/**
 * Pids of the processes whose command line contains `needle` (Linux /proc): e.g. every
 * PostgreSQL process (`postgres:` backends, walwriter, checkpointer) or the Kafka broker.
 */
export function pidsMatching(needle) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** CPU seconds of a set of processes now, per pid (a process that exits keeps its last figure). */
export function cpuOfPids(pids) {
  return new Map(pids.map((pid) => [pid, pidCpuSeconds(pid)]));
}

/** CPU seconds the processes in `before` (and new ones matching nothing) used since `before`. */
export function cpuSince(before) {
  let sum = 0;
  for (const [pid, s] of before) {
    const now = pidCpuSeconds(pid);
    if (Number.isFinite(now) && Number.isFinite(s)) sum += now - s;
  }
  return sum;
}

/**
 * PostgreSQL's processes on this machine: the postmaster and its helpers (WAL writer,
 * checkpointer, ...) always, and the backends whose database `countDatabase(name)` accepts
 * (so a test suite running on other databases does not count).
 */
export function postgresPids(countDatabase) {
  return pidsMatching('postgres').filter((pid) => {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      // A backend: "postgres: 15/main: <user> <database> <client> <state>"
      const backend = /^postgres: \S+: \S+ (\S+) \S+\(\d+\)/.exec(cmd);
      return !backend || countDatabase(backend[1]);
    } catch {
      return false;
    }
  });
}
