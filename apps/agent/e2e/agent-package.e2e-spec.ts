/**
 * latchkey-agent as a standalone npm package: packed from the build by
 * tools/scripts/pack-agent.mjs, unpacked elsewhere, and run from there (the
 * bundled @latchkey libraries and protos resolve inside the package). Also the
 * `npx latchkey-agent` bin of the repository.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, REPO_ROOT, TMP_DIR } from '@latchkey/testing';

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(TMP_DIR, 'agent-pack-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the latchkey-agent package', () => {
  it('packs with its bin, its own protos and the bundled workspace libraries, nothing else', () => {
    const report = JSON.parse(
      execFileSync(
        process.execPath,
        [join(REPO_ROOT, 'tools/scripts/pack-agent.mjs'), '--out', work],
        {
          encoding: 'utf8',
        },
      ),
    ) as { name: string; filename: string; bundled: string[]; files: { path: string }[] }[];
    const [pkg] = report;
    expect(pkg!.name).toBe('latchkey-agent');
    expect(pkg!.bundled.sort()).toEqual([
      '@latchkey/audit-chain',
      '@latchkey/contracts',
      '@latchkey/tpm',
    ]);
    const paths = pkg!.files.map((f) => f.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'package.json',
        'dist/apps/agent/src/main.js',
        'proto/latchkey/auth/v1/auth.proto',
        'node_modules/@latchkey/contracts/grpc-packages.js',
        'node_modules/@latchkey/audit-chain/chain-verification.js',
        'node_modules/@latchkey/tpm/tpm2-tools.js',
      ]),
    );
    expect(paths.filter((p) => /\.spec\.|\.map$|\.ts$/.test(p))).toEqual([]);
    execFileSync('tar', ['-xzf', join(work, pkg!.filename), '-C', work]);
  }, 120_000);

  it('runs from the unpacked package and says clearly when the server is unreachable', async () => {
    const main = join(work, 'package/dist/apps/agent/src/main.js');
    const help = spawnSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: latchkey-agent <command>/);
    const port = await freePort();
    const r = spawnSync(
      process.execPath,
      [
        main,
        'register',
        '--tenant',
        '00000000-0000-4000-8000-000000000001',
        '--plaintext',
        '--registration-addr',
        `127.0.0.1:${port}`,
      ],
      {
        encoding: 'utf8',
        input: 'a-join-token\n',
        env: { ...process.env, LATCHKEY_AGENT_HOME: join(work, 'keystore') },
        timeout: 60_000,
      },
    );
    expect(r.stderr).toMatch(/cannot reach the registration service/);
    expect(r.status).toBe(3);
  }, 60_000);

  it('is the bin of the repository: npx latchkey-agent', () => {
    const r = spawnSync('npx', ['--no-install', 'latchkey-agent', '--help'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: latchkey-agent <command>/);
  }, 60_000);
});
