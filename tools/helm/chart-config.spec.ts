/**
 * The chart cannot drift from the code: for every service and value set, the
 * environment the chart gives the container matches the service's config schema
 * (apps/<service>/src/config.ts, read at test time) one to one, the schema
 * accepts it, and values.yaml carries the service's own defaults.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import type { z } from 'zod';
import { parseConfig } from '@latchkey/service-kit';
import {
  containerEnv,
  enabledServices,
  type EnvVar,
  interpolated,
  type Json,
  render,
  ROOT,
  VALUE_SETS,
  valuesOf,
} from './helm';

type Shape = Record<string, z.ZodTypeAny>;

/** `<service>ConfigShape` exported by apps/<service>/src/config.ts. */
function configShape(service: string): Shape {
  const file = join(ROOT, 'apps', service, 'src', 'config.ts');
  // A dynamic require: every service the chart knows is checked, without a list here to forget.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as Record<string, unknown>;
  const shape = mod[`${service}ConfigShape`];
  if (!shape) throw new Error(`apps/${service}/src/config.ts exports no ${service}ConfigShape`);
  return shape as Shape;
}

/**
 * Variables the chart derives from a setting and renders only when that setting
 * asks for them (TLS files, SASL, the addresses of one Redis mode...). Each is
 * rendered exactly when its condition holds (checked both ways below), and some
 * value set renders each one, so the service's schema parses every one of them.
 */
const CONDITIONAL: Record<string, { when: string; holds: (v: Json) => boolean }> = {
  KAFKA_SSL_CA_FILE: {
    when: 'kafka.tls.enabled and kafka.tls.caSecret',
    holds: (v) => v.kafka.tls.enabled && Boolean(v.kafka.tls.caSecret),
  },
  KAFKA_SSL_CERT_FILE: {
    when: 'kafka.tls.enabled and kafka.tls.clientCertSecret',
    holds: (v) => v.kafka.tls.enabled && Boolean(v.kafka.tls.clientCertSecret),
  },
  KAFKA_SSL_KEY_FILE: {
    when: 'kafka.tls.enabled and kafka.tls.clientCertSecret',
    holds: (v) => v.kafka.tls.enabled && Boolean(v.kafka.tls.clientCertSecret),
  },
  KAFKA_SASL_MECHANISM: { when: 'kafka.sasl.enabled', holds: (v) => v.kafka.sasl.enabled },
  KAFKA_SASL_USERNAME: { when: 'kafka.sasl.enabled', holds: (v) => v.kafka.sasl.enabled },
  KAFKA_SASL_PASSWORD: { when: 'kafka.sasl.enabled', holds: (v) => v.kafka.sasl.enabled },
  REDIS_URL: { when: 'redis.mode=standalone', holds: (v) => v.redis.mode === 'standalone' },
  REDIS_SENTINELS: { when: 'redis.mode=sentinel', holds: (v) => v.redis.mode === 'sentinel' },
  REDIS_SENTINEL_MASTER_NAME: {
    when: 'redis.mode=sentinel',
    holds: (v) => v.redis.mode === 'sentinel',
  },
  REDIS_DATABASE: { when: 'redis.mode=sentinel', holds: (v) => v.redis.mode === 'sentinel' },
  REDIS_SENTINEL_PASSWORD: {
    when: 'redis.mode=sentinel, redis.sentinel.authenticate and redis.auth.enabled',
    holds: (v) =>
      v.redis.mode === 'sentinel' && v.redis.sentinel.authenticate && v.redis.auth.enabled,
  },
  REDIS_CLUSTER_NODES: { when: 'redis.mode=cluster', holds: (v) => v.redis.mode === 'cluster' },
  REDIS_USERNAME: {
    when: 'redis.auth.enabled and redis.auth.username',
    holds: (v) => v.redis.auth.enabled && Boolean(v.redis.auth.username),
  },
  REDIS_PASSWORD: { when: 'redis.auth.enabled', holds: (v) => v.redis.auth.enabled },
  REDIS_TLS_CA_FILE: {
    when: 'redis.tls.enabled and redis.tls.caSecret',
    holds: (v) => v.redis.tls.enabled && Boolean(v.redis.tls.caSecret),
  },
  REDIS_TLS_CERT_FILE: {
    when: 'redis.tls.enabled and redis.tls.clientCertSecret',
    holds: (v) => v.redis.tls.enabled && Boolean(v.redis.tls.clientCertSecret),
  },
  REDIS_TLS_KEY_FILE: {
    when: 'redis.tls.enabled and redis.tls.clientCertSecret',
    holds: (v) => v.redis.tls.enabled && Boolean(v.redis.tls.clientCertSecret),
  },
  REDIS_TLS_SERVERNAME: {
    when: 'redis.tls.enabled and redis.tls.serverName',
    holds: (v) => v.redis.tls.enabled && Boolean(v.redis.tls.serverName),
  },
};

/** Values in values.yaml that differ from the code's default on purpose. */
const DELIBERATE_OVERRIDES: Record<string, string> = {
  NODE_ENV: 'a cluster runs production, the code defaults to development',
};

/** How the chart sets the variables it derives, for the failure messages. */
const DERIVED_HINTS: Record<string, string> = {
  REDIS_MODE: 'set services.<svc>.redis: true in values.yaml',
  KEY_ENCRYPTION_KEYS: 'set services.<svc>.keyEncryption: true in values.yaml',
  INTERNAL_CALL_SIGNING_KEYS: 'add the services it calls to services.<svc>.calls in values.yaml',
  INTERNAL_CALL_TRUSTED_KEYS: 'set services.<svc>.internalCalls.serves: true in values.yaml',
  AUTH_ISSUER: 'set services.<svc>.tokens: verifier (or issuer) in values.yaml',
  AUTH_AUDIENCE: 'set services.<svc>.tokens: verifier (or issuer) in values.yaml',
  AUTH_JWKS_URL: 'set services.<svc>.tokens: verifier in values.yaml',
  DATABASE_URL: 'the chart always sets it: check templates/deployment.yaml',
};

function hintFor(name: string, service: string): string {
  const callee = /^([A-Z_]+)_GRPC_ADDRESS$/.exec(name)?.[1]?.toLowerCase().replace(/_/g, '-');
  if (callee) return `add ${callee} to services.${service}.calls in values.yaml`;
  return (DERIVED_HINTS[name] ?? '').replace('<svc>', service);
}

/** Stand-ins for what the Secrets hold, so that the schema can parse the whole environment. */
const SECRET_SAMPLES: Record<string, string> = {
  DATABASE_URL: 'postgresql://latchkey:secret@db:5432/latchkey',
  KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
  INTERNAL_CALL_SIGNING_KEYS: JSON.stringify({
    keys: [{ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'ic1' }],
  }),
  REDIS_PASSWORD: 'secret',
  REDIS_SENTINEL_PASSWORD: 'secret',
  KAFKA_SASL_PASSWORD: 'secret',
  DEVICE_CA_PLATFORM_ROOT_CERT: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  DEVICE_CA_PLATFORM_ROOT_KEY: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n',
};

/** Variables values.yaml declares for a service but leaves unset on purpose ('' or no Secret). */
function declaredUnset(values: Json, service: string): string[] {
  const maps = [values.commonEnv ?? {}, values.services[service].env ?? {}];
  const merged: Record<string, unknown> = Object.assign({}, ...maps);
  const secretEnv = (values.services[service].secretEnv ?? {}) as Record<string, Json>;
  return [
    ...Object.entries(merged)
      .filter(([, v]) => v === '' || v === null)
      .map(([k]) => k),
    ...Object.entries(secretEnv)
      .filter(([, ref]) => !ref?.secretName)
      .map(([k]) => k),
  ];
}

/** The container's variables as the process sees them (Secrets sampled, $(VAR) expanded). */
function processEnv(vars: EnvVar[], service: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of vars) {
    if (v.valueFrom?.secretKeyRef) {
      const sample = SECRET_SAMPLES[v.name];
      if (sample === undefined)
        throw new Error(
          `${service}: ${v.name} comes from a Secret and tools/helm/chart-config.spec.ts has no sample value for it: add one to SECRET_SAMPLES`,
        );
      env[v.name] = sample;
    } else {
      env[v.name] = (v.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n) =>
        n in env ? env[n]! : m,
      );
    }
  }
  return env;
}

const describeDefault = (schema: z.ZodTypeAny): string => {
  const r = schema.safeParse(undefined);
  if (!r.success) return 'none: it is required';
  return r.data === undefined
    ? "none: it is optional (declare it with '')"
    : JSON.stringify(r.data);
};

const services = enabledServices('default');

describe.each(services)('the %s service and the chart', (service) => {
  const shape = configShape(service);
  const reads = Object.keys(shape);
  const where = `apps/${service}/src/config.ts (${service}ConfigShape)`;

  it.each(Object.keys(VALUE_SETS))(
    'with the %s values: the chart sets every variable the service reads, and only those',
    (set) => {
      const values = valuesOf(set);
      const vars = containerEnv(render(set), service);
      const inputs = interpolated(vars);
      const rendered = new Set(
        vars.map((v) => v.name).filter((n) => !(inputs.has(n) && !reads.includes(n))),
      );
      const declared = new Set([...rendered, ...declaredUnset(values, service)]);
      const problems: string[] = [];
      for (const name of reads) {
        if (declared.has(name)) continue;
        const conditional = CONDITIONAL[name];
        if (conditional && !conditional.holds(values)) continue;
        const hint = conditional
          ? `the chart must set it when ${conditional.when} (templates/_helpers.tpl "latchkey.env" or templates/deployment.yaml)`
          : hintFor(name, service);
        problems.push(
          `${service} reads ${name} (${where}) but the chart neither sets nor declares it: ` +
            (hint ||
              `add it to services.${service}.env in deploy/helm/latchkey/values.yaml with the service's default (${describeDefault(shape[name]!)}), or to services.${service}.secretEnv if it is a secret`),
        );
      }
      for (const name of rendered) {
        const conditional = CONDITIONAL[name];
        if (conditional && !conditional.holds(values))
          problems.push(
            `the chart sets ${name} for ${service} although ${conditional.when} does not hold: render it only then`,
          );
      }
      for (const name of declared) {
        if (reads.includes(name)) continue;
        problems.push(
          `the chart sets ${name} for ${service}, which ${where} does not read: remove it from the chart (values.yaml or templates/_helpers.tpl "latchkey.env"), or add it to the schema`,
        );
      }
      expect(problems).toEqual([]);
    },
  );

  it.each(Object.keys(VALUE_SETS))(
    'with the %s values: the service accepts the environment the chart renders',
    (set) => {
      const env = processEnv(containerEnv(render(set), service), service);
      // parseConfig, as the service itself does: the schemas and the rules across variables.
      const problems = parseConfig(shape, env).problems.map(
        (p) =>
          `${service} would refuse to start: ${p.variable}=${JSON.stringify(env[p.variable])}: ${p.message}`,
      );
      expect(problems).toEqual([]);
    },
  );

  it("values.yaml uses the service's own defaults", () => {
    const values = valuesOf('default');
    const merged: Record<string, unknown> = {
      ...values.commonEnv,
      ...(values.services[service].env ?? {}),
    };
    const problems: string[] = [];
    for (const [name, chartValue] of Object.entries(merged)) {
      const schema = shape[name];
      if (!schema || chartValue === '' || name in DELIBERATE_OVERRIDES) continue;
      const codeDefault = schema.safeParse(undefined);
      if (!codeDefault.success) continue; // required: no default to agree with
      const parsed = schema.safeParse(String(chartValue));
      const same =
        parsed.success && JSON.stringify(parsed.data) === JSON.stringify(codeDefault.data);
      if (!same)
        problems.push(
          `values.yaml sets ${name}=${JSON.stringify(chartValue)} for ${service}, but the default in ${where} is ${JSON.stringify(codeDefault.data)}: make them agree (or list ${name} in DELIBERATE_OVERRIDES with the reason)`,
        );
    }
    expect(problems).toEqual([]);
  });
});

describe('variables the chart renders only for some settings', () => {
  const renderedIn = (name: string) =>
    Object.keys(VALUE_SETS).filter((set) =>
      enabledServices(set).some((svc) =>
        containerEnv(render(set), svc).some((v) => v.name === name),
      ),
    );

  it.each(Object.keys(CONDITIONAL))(
    '%s is read by a service and rendered by at least one value set',
    (name) => {
      const readers = services.filter((s) => name in configShape(s));
      expect({ [name]: readers.length > 0 }).toEqual({ [name]: true });
      expect({ [name]: renderedIn(name) }).toEqual({
        [name]: expect.arrayContaining([expect.any(String)]),
      });
    },
  );
});
