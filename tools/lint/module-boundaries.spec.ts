/** The architecture's import rules are enforced by ESLint, not by good intentions. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '../..');

/** Lints `code` as if it were `file`, with the repository's real ESLint config (in a child process). */
async function errorsFor(file: string, code: string): Promise<string[]> {
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/eslint/bin/eslint.js'),
      '--format',
      'json',
      '--stdin',
      '--stdin-filename',
      file,
    ],
    { cwd: root, input: code, encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false' } },
  );
  // Nx may print a warning line before ESLint's one-line JSON report.
  const report = r.stdout.split('\n').find((line) => line.startsWith('[')) ?? '[]';
  const [result] = JSON.parse(report) as {
    messages: { ruleId: string | null; message: string }[];
  }[];
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === '@nx/enforce-module-boundaries')
    .map((m) => m.message);
}

describe('module boundaries', () => {
  it('refuses an app importing another app', async () => {
    const errors = await errorsFor(
      'apps/audit/src/boundary-probe.ts',
      "import { registrationConfigShape } from '../../registration/src/config';\nexport const x = registrationConfigShape;\n",
    );
    expect(errors.length).toBeGreaterThan(0);
  }, 60000);

  it('refuses production library code importing the test helpers', async () => {
    const errors = await errorsFor(
      'libs/events/src/boundary-probe.ts',
      "import { eventually } from '@latchkey/testing';\nexport const x = eventually;\n",
    );
    expect(errors.join('\n')).toMatch(/type:lib/);
  }, 60000);

  it('refuses the contracts importing anything of ours', async () => {
    const errors = await errorsFor(
      'libs/contracts/src/boundary-probe.ts',
      "import { DomainError } from '@latchkey/service-kit';\nexport const x = DomainError;\n",
    );
    // Reported as a tag violation, or as the cycle it would create through the test helpers.
    expect(errors.join('\n')).toMatch(/type:contracts|Circular dependency between "contracts"/);
  }, 60000);

  it('allows an app to use the shared libraries', async () => {
    const errors = await errorsFor(
      'apps/audit/src/boundary-probe.ts',
      "import { DomainError } from '@latchkey/service-kit';\nexport const x = DomainError;\n",
    );
    expect(errors).toEqual([]);
  }, 60000);
});
