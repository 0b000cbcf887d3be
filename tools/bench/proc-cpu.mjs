// CPU time of a child process, for benchmarks: CPU per operation does not depend
// on what else a shared machine runs, where operations per second do.
import { readFileSync } from 'node:fs';

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
