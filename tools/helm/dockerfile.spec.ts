/**
 * The container build without a Docker engine: the structure of
 * deploy/docker/Dockerfile (pinned bases, non-root, no secrets, small runtime
 * stage, OCI labels), its build context (.dockerignore), and that
 * deploy/compose/compose.yaml builds and configures every service as its
 * config schema requires.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Json, ROOT } from './helm';

const DOCKERFILE = join(ROOT, 'deploy/docker/Dockerfile');
const SERVICES = readdirSync(join(ROOT, 'apps'))
  .filter((a) => existsSync(join(ROOT, 'apps', a, 'src/main.ts')) && a !== 'agent')
  .sort();

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name?: string;
  body: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined. */
function instructions(text: string): Instruction[] {
  return text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

function stagesOf(all: Instruction[]): { globalArgs: Record<string, string>; stages: Stage[] } {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const i of all) {
    if (i.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args)!;
      stages.push({ base: m[1]!, name: m[2], body: [] });
    } else if (stages.length === 0 && i.op === 'ARG') {
      const [k, v = ''] = i.args.split('=');
      globalArgs[k!] = v;
    } else stages.at(-1)?.body.push(i);
  }
  return { globalArgs, stages };
}

const text = readFileSync(DOCKERFILE, 'utf8');
const all = instructions(text);
const { globalArgs, stages } = stagesOf(all);
const stage = (name: string) => stages.find((s) => s.name === name)!;
const runtime = stages.at(-1)!;
const shipped = [runtime, stage('migrate')];

describe('deploy/docker/Dockerfile', () => {
  it('is multi-stage, with the service runtime as the default (last) stage and a migrate stage', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'migrate', 'runtime']);
  });

  it('pins every base image by digest or exact version tag', () => {
    for (const s of stages) {
      const image = s.base.replace(/^\$\{(\w+)\}$/, (_, k) => globalArgs[k] ?? '');
      expect(image).toMatch(/^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[a-f0-9]{64})?$/);
      expect(image).toMatch(/:\d+\.\d+\.\d+|@sha256:/);
    }
  });

  it('runs the shipped images as a numeric non-root user', () => {
    for (const s of shipped) {
      const users = s.body.filter((i) => i.op === 'USER').map((i) => i.args);
      expect({ [s.name!]: users.at(-1) }).toEqual({
        [s.name!]: expect.stringMatching(/^[1-9]\d*(:[1-9]\d*)?$/),
      });
      // Nothing runs after USER as root again.
      const last = s.body.findIndex((i) => i.op === 'USER');
      expect(s.body.slice(last).filter((i) => i.op === 'RUN')).toEqual([]);
    }
  });

  it('has no HEALTHCHECK (Kubernetes probes do that)', () => {
    expect(all.filter((i) => i.op === 'HEALTHCHECK')).toEqual([]);
  });

  it('labels the shipped images with the OCI annotations', () => {
    for (const s of shipped) {
      const labels = s.body
        .filter((i) => i.op === 'LABEL')
        .map((i) => i.args)
        .join(' ');
      for (const key of ['title', 'description', 'source', 'licenses', 'version', 'revision'])
        expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  it('ships no dev dependencies and no build tooling in the service runtime', () => {
    const build = stage('build');
    const prune = build.body.find((i) => i.op === 'RUN' && /npm prune --omit=dev/.test(i.args));
    // Also the packages npm keeps as optional peers of prod packages (the Prisma CLI, TypeScript).
    expect(prune?.args).toMatch(/e\.devOptional\) require\('fs'\)\.rmSync/);
    const copies = runtime.body.filter((i) => i.op === 'COPY');
    // Everything comes from the build stage, node_modules from the pruned copy.
    for (const c of copies) expect(c.args).toMatch(/^--from=build\s/);
    const nodeModules = copies.filter((c) => /\snode_modules\/$/.test(c.args));
    expect(nodeModules.map((c) => c.args)).toEqual([
      '--from=build /prod_node_modules/ node_modules/',
    ]);
    expect(
      runtime.body.some((i) => i.op === 'RUN' && /rm -rf .*\/usr\/local\/bin\/npm/.test(i.args)),
    ).toBe(true);
    expect(runtime.body.find((i) => i.op === 'CMD')?.args).toBe('["node", "dist/main.js"]');
  });

  it('copies no secrets and takes none as build arguments', () => {
    const secretPath = /(^|[\s/])(\.env|\.npmrc|id_rsa|[^\s]*\.(pem|key|p12|pfx))(\s|$)/;
    for (const i of all.filter((x) => x.op === 'COPY' || x.op === 'ADD')) {
      expect(i.args).not.toMatch(secretPath);
      expect(i.args).not.toMatch(/https?:\/\//);
    }
    for (const i of all.filter((x) => x.op === 'ARG' || x.op === 'ENV'))
      expect(i.args).not.toMatch(/(PASSWORD|SECRET|TOKEN|_KEYS?|CREDENTIAL)\w*=/i);
  });

  it('copies from the build context only paths that exist and .dockerignore lets through', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['**/node_modules', 'dist', '.git', '**/.env', '**/*.pem', '**/*.key'])
      expect(ignore).toContain(must);
    const fromContext = all.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='));
    expect(fromContext.length).toBeGreaterThan(0);
    for (const c of fromContext) {
      const sources = c.args.split(/\s+/).slice(0, -1);
      for (const src of sources) {
        expect({ [src]: existsSync(join(ROOT, src)) }).toEqual({ [src]: true });
        expect(ignore).not.toContain(src.replace(/\/$/, ''));
      }
    }
  });

  it('builds every service with the SERVICE argument', () => {
    expect(runtime.body.some((i) => i.op === 'ARG' && i.args === 'SERVICE')).toBe(true);
    expect(
      runtime.body.some((i) => i.op === 'COPY' && i.args.includes('dist/apps/${SERVICE}/')),
    ).toBe(true);
    expect(SERVICES).toEqual(['audit', 'auth', 'provisioning', 'registration']);
  });
});

describe('deploy/compose/compose.yaml', () => {
  const compose = parseYaml(readFileSync(join(ROOT, 'deploy/compose/compose.yaml'), 'utf8'), {
    merge: true,
  }) as Json;

  /** What deploy/compose/.env holds, as its header says (fresh keys). */
  const jwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid });
  const dotenv: Record<string, string> = {
    KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32).toString('base64')}`,
  };
  for (const caller of ['auth', 'provisioning']) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const prefix = caller.toUpperCase();
    dotenv[`${prefix}_INTERNAL_CALL_SIGNING_KEYS`] = JSON.stringify({
      keys: [jwk(privateKey, caller)],
    });
    dotenv[`${prefix}_INTERNAL_CALL_PUBLIC_KEY`] = JSON.stringify(jwk(publicKey, caller));
  }
  /** A service's environment with the .env variables interpolated (each one required). */
  function composeEnv(svc: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(
      compose.services[svc].environment as Record<string, unknown>,
    ))
      env[k] = String(v).replace(/\$\{([A-Z0-9_]+):\?[^}]*\}/g, (_m, name: string) => {
        if (!(name in dotenv))
          throw new Error(
            `${svc}: ${k} needs ${name}, which the header of compose.yaml does not name`,
          );
        return dotenv[name]!;
      });
    return env;
  }

  it("gives each caller only its own signing key and each callee its callers' public keys", () => {
    const trusted = (svc: string) => {
      const v = composeEnv(svc).INTERNAL_CALL_TRUSTED_KEYS;
      return v === undefined ? undefined : Object.keys(JSON.parse(v) as object).sort();
    };
    expect(Object.fromEntries(SERVICES.map((s) => [s, trusted(s)]))).toEqual({
      registration: ['auth', 'provisioning'],
      provisioning: ['auth'],
      auth: undefined,
      audit: undefined,
    });
    for (const svc of SERVICES)
      expect([svc, composeEnv(svc).INTERNAL_CALL_SIGNING_KEYS]).toEqual([
        svc,
        ['auth', 'provisioning'].includes(svc)
          ? dotenv[`${svc.toUpperCase()}_INTERNAL_CALL_SIGNING_KEYS`]
          : undefined,
      ]);
  });

  it.each(SERVICES)('builds %s from the Dockerfile, hardened like the chart', (svc) => {
    const s = compose.services[svc];
    expect(s.build).toEqual({
      context: '../..',
      dockerfile: 'deploy/docker/Dockerfile',
      args: { SERVICE: svc },
    });
    expect(s).toEqual(
      expect.objectContaining({ read_only: true, cap_drop: ['ALL'], user: '10001:10001' }),
    );
    expect(s.depends_on.migrate).toEqual({ condition: 'service_completed_successfully' });
  });

  it.each(SERVICES)(
    'gives %s an environment its config schema accepts, and nothing it does not read',
    (svc) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const shape = require(join(ROOT, 'apps', svc, 'src/config.ts'))[
        `${svc}ConfigShape`
      ] as Record<string, z.ZodTypeAny>;
      const env = composeEnv(svc);
      const unknown = Object.keys(env).filter(
        (k) => !(k in shape) && k !== 'KAFKAJS_NO_PARTITIONER_WARNING',
      );
      expect(unknown).toEqual([]);
      const r = z.object(shape).safeParse(env);
      expect(
        r.success ? [] : r.error.issues.map((i) => `${svc}: ${String(i.path[0])}: ${i.message}`),
      ).toEqual([]);
    },
  );
});
