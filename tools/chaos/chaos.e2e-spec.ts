// The short version of the fault-injection suite (tools/chaos/run.mjs): each scenario's load,
// fault and checks run once in a child process on the chaos suite's private stack; each
// scenario's verdict is one test here. The long version: `node tools/chaos/run.mjs --full`.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@latchkey/testing';

interface Verdict {
  scenario: string;
  pass: boolean;
  figures?: Record<string, string | number>;
  error?: string;
}

const SCENARIOS = ['kafka', 'audit', 'redis', 'postgres', 'auth'];
const RESULT = join(REPO_ROOT, 'tmp', 'chaos-result.json');

jest.setTimeout(20 * 60_000);

describe('fault injection under load (tools/chaos, short run)', () => {
  const verdicts = new Map<string, Verdict>();
  let output = '';

  beforeAll(async () => {
    rmSync(RESULT, { force: true });
    await new Promise<void>((resolve) => {
      const child = spawn(
        process.execPath,
        ['tools/chaos/run.mjs', '--no-build', '--json', RESULT],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout.on('data', (d: Buffer) => {
        output += d;
        process.stdout.write(d);
      });
      child.stderr.on('data', (d: Buffer) => (output += d));
      child.on('exit', () => resolve());
    });
    try {
      for (const v of JSON.parse(readFileSync(RESULT, 'utf8')) as Verdict[])
        verdicts.set(v.scenario, v);
    } catch {
      /* no result file: every scenario fails below, with the run's output */
    }
  });

  it.each(SCENARIOS)('%s: passes with nothing lost or duplicated in audit', (scenario) => {
    const v = verdicts.get(scenario);
    if (!v) throw new Error(`no verdict for ${scenario}; the run printed:\n${output.slice(-4000)}`);
    if (v.error) throw new Error(`${scenario} failed to run: ${v.error}`);
    expect(v.figures).toMatchObject({ lost: 0, duplicated: 0, unrecorded: 0, okNotStored: 0 });
    expect(v.figures?.chain).toBe('verified');
    expect(v.pass).toBe(true);
  });
});
