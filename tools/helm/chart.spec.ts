/**
 * The Helm chart (deploy/helm/latchkey) over three value sets: default, a
 * production-shaped one (Redis Cluster, SASL/TLS Kafka, Gateway API, monitoring)
 * and a minimal single-replica one. Every rendered object is validated against
 * the Kubernetes schemas, and the security, probe, hook and network rules of
 * the architecture are asserted on the output. Invalid values must fail.
 */
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1';
import { GRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2';
import {
  PrometheusRule,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Topics } from '@latchkey/events';
import { parseInternalCallSigningKeys, parseInternalCallTrustedKeys } from '@latchkey/service-kit';
import {
  byKind,
  component,
  containerEnv,
  enabledServices,
  forComponent,
  type Json,
  type K8sObject,
  lint,
  render,
  ROOT,
  template,
  templateBare,
  VALUE_SETS,
  valuesOf,
} from './helm';

type Validatable = { validate(): void };
type ModelClass = new (data: Json) => Validatable;

/** The schema of each kind the chart may render, by apiVersion/kind. */
const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
  'gateway.networking.k8s.io/v1/HTTPRoute': HTTPRoute,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

/** Validates one object; returns the problem, or undefined. */
function schemaProblem(o: K8sObject): string | undefined {
  const id = `${o.apiVersion}/${o.kind}`;
  try {
    if (id === 'gateway.networking.k8s.io/v1/GRPCRoute') {
      // The installed gateway-api models (0.5, the last for Node 20) have GRPCRoute only
      // as v1alpha2; its spec is the one that became v1 (Gateway API 1.1) unchanged.
      const { apiVersion: _v1, kind: _kind, ...rest } = o;
      new GRPCRoute(rest as Json).validate();
      return undefined;
    }
    if (id === 'kafka.strimzi.io/v1beta2/KafkaTopic') {
      // No Strimzi models on npm: check the fields Strimzi's CRD requires and types.
      const s = o.spec ?? {};
      const ok =
        typeof o.metadata.labels?.['strimzi.io/cluster'] === 'string' &&
        typeof s.topicName === 'string' &&
        Number.isInteger(s.partitions) &&
        Number.isInteger(s.replicas) &&
        Object.values(s.config ?? {}).every((v) => typeof v === 'string');
      return ok ? undefined : 'KafkaTopic lacks strimzi.io/cluster, topicName, or integer sizes';
    }
    const Model = MODELS[id];
    if (!Model) return `no schema known for ${id}: add its model to MODELS`;
    new Model(o).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The pod spec of a Deployment or Job. */
const podSpec = (o: K8sObject): Json => o.spec.template.spec;

const workloads = (objects: K8sObject[]) =>
  objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job');

/** A NetworkPolicy peer, in words: "pods:audit", "ns:monitoring", "any". */
function peer(p: Json): string {
  const pods = p.podSelector?.matchLabels?.['app.kubernetes.io/component'];
  if (pods) return `pods:${pods}`;
  const ns = p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];
  if (ns) return `ns:${ns}`;
  return JSON.stringify(p);
}

/** A NetworkPolicy's rules as sorted one-line flows: "in ns:monitoring -> http". */
function flows(policy: K8sObject): string[] {
  const out: string[] = [];
  for (const rule of policy.spec.ingress ?? []) {
    const ports = (rule.ports ?? []).map((p: Json) => p.port).join(',');
    for (const from of rule.from ?? ['any'])
      out.push(`in ${from === 'any' ? 'any' : peer(from)} -> ${ports}`);
  }
  for (const rule of policy.spec.egress ?? []) {
    const ports = (rule.ports ?? [])
      .map((p: Json) => p.port)
      .filter((p: Json, i: number, all: Json[]) => all.indexOf(p) === i)
      .join(',');
    const to = rule.to?.length ? rule.to.map(peer) : ['any'];
    for (const t of to) out.push(`out ${t} -> ${ports}`);
  }
  return out.sort();
}

/** The service-to-service gRPC calls of ARCHITECTURE.md ("calls (gRPC)" column). */
const ARCHITECTURE_CALLS = /^(auth -> (provisioning|registration)|provisioning -> registration)$/;

const SECRET_VARS = [
  'DATABASE_URL',
  'KEY_ENCRYPTION_KEYS',
  'INTERNAL_CALL_SIGNING_KEYS',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
  'KAFKA_SASL_PASSWORD',
];

describe.each(Object.keys(VALUE_SETS))('the chart with the %s values', (set) => {
  const services = enabledServices(set);
  const values = valuesOf(set);
  let objects: K8sObject[];

  beforeAll(() => {
    objects = render(set);
  });

  it('passes helm lint --strict', () => {
    const r = lint(VALUE_SETS[set]!);
    expect(r.output).toContain('0 chart(s) failed');
    expect(r.ok).toBe(true);
  });

  it('renders only objects that are valid against their Kubernetes schemas', () => {
    const problems = objects
      .map((o) => [`${o.kind} ${o.metadata.name}`, schemaProblem(o)] as const)
      .filter(([, p]) => p)
      .map(([what, p]) => `${what}: ${p}`);
    expect(problems).toEqual([]);
    expect(objects.length).toBeGreaterThan(services.length * 5);
  });

  it.each(['ServiceAccount', 'Service', 'ConfigMap', 'Deployment', 'NetworkPolicy'])(
    'renders one %s per enabled service',
    (kind) => {
      const regular = byKind(objects, kind).filter(
        (o) => !o.metadata.annotations?.['helm.sh/hook'],
      );
      expect(regular.map(component).sort()).toEqual(services);
    },
  );

  it('runs every container as non-root, read-only, without capabilities, with seccomp RuntimeDefault', () => {
    const problems: string[] = [];
    for (const w of workloads(objects)) {
      const pod = podSpec(w);
      const where = `${w.kind} ${w.metadata.name}`;
      if (pod.securityContext?.runAsNonRoot !== true) problems.push(`${where}: pod runAsNonRoot`);
      if (!(pod.securityContext?.runAsUser > 0)) problems.push(`${where}: pod runAsUser > 0`);
      if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault')
        problems.push(`${where}: pod seccompProfile`);
      if (pod.automountServiceAccountToken !== false)
        problems.push(`${where}: mounts a service account token`);
      for (const c of pod.containers) {
        const sc = c.securityContext ?? {};
        if (sc.runAsNonRoot !== true) problems.push(`${where}/${c.name}: runAsNonRoot`);
        if (sc.readOnlyRootFilesystem !== true)
          problems.push(`${where}/${c.name}: readOnlyRootFilesystem`);
        if (sc.allowPrivilegeEscalation !== false)
          problems.push(`${where}/${c.name}: allowPrivilegeEscalation`);
        if (JSON.stringify(sc.capabilities?.drop) !== '["ALL"]')
          problems.push(`${where}/${c.name}: capabilities.drop [ALL]`);
        if (sc.seccompProfile?.type !== 'RuntimeDefault')
          problems.push(`${where}/${c.name}: seccompProfile RuntimeDefault`);
        if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory)
          problems.push(`${where}/${c.name}: cpu and memory requests`);
        if (!c.resources?.limits?.memory) problems.push(`${where}/${c.name}: memory limit`);
      }
    }
    expect(problems).toEqual([]);
    expect(workloads(objects).length).toBe(services.length * 2);
  });

  it('probes /healthz (startup, liveness) and /readyz (readiness) on the http port', () => {
    for (const d of byKind(objects, 'Deployment')) {
      const c = podSpec(d).containers[0];
      expect({
        service: component(d),
        startup: c.startupProbe?.httpGet,
        liveness: c.livenessProbe?.httpGet,
        readiness: c.readinessProbe?.httpGet,
      }).toEqual({
        service: component(d),
        startup: { path: '/healthz', port: 'http' },
        liveness: { path: '/healthz', port: 'http' },
        readiness: { path: '/readyz', port: 'http' },
      });
      expect(c.ports.map((p: Json) => p.name).sort()).toEqual(['grpc', 'http']);
    }
  });

  it("gives each pod longer to terminate than its preStop sleep plus the service's drain time", () => {
    for (const d of byKind(objects, 'Deployment')) {
      const env = containerEnv(objects, component(d)!);
      const drainMs = Number(env.find((e) => e.name === 'SHUTDOWN_TIMEOUT_MS')?.value);
      const preStop = podSpec(d).containers[0].lifecycle?.preStop?.sleep?.seconds;
      expect(drainMs).toBeGreaterThan(0);
      expect(preStop).toBeGreaterThan(0);
      expect(podSpec(d).terminationGracePeriodSeconds).toBeGreaterThan(preStop + drainMs / 1000);
    }
  });

  it('names the Service ports http and grpc, pointing at the container ports', () => {
    for (const s of byKind(objects, 'Service')) {
      const ports = s.spec.ports.map((p: Json) => `${p.name}->${p.targetPort}`).sort();
      expect(ports).toEqual(['grpc->grpc', 'http->http']);
    }
  });

  it('runs migrations as a pre-install/pre-upgrade hook Job per service, with its database Secret', () => {
    const jobs = byKind(objects, 'Job');
    expect(jobs.map(component).sort()).toEqual(services.map((s) => `${s}-migration`));
    for (const svc of services) {
      const job = forComponent(objects, 'Job', `${svc}-migration`);
      expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
      expect(job.metadata.annotations?.['helm.sh/hook-delete-policy']).toContain(
        'before-hook-creation',
      );
      const pod = podSpec(job);
      expect(pod.restartPolicy).toBe('Never');
      const c = pod.containers[0];
      expect(c.args).toEqual(['node', 'tools/scripts/db.mjs', 'deploy', svc]);
      const dbJob = c.env.find((e: Json) => e.name === 'DATABASE_URL');
      const dbService = containerEnv(objects, svc).find((e) => e.name === 'DATABASE_URL');
      expect(dbJob.valueFrom.secretKeyRef).toEqual(dbService?.valueFrom?.secretKeyRef);
      expect(dbJob.valueFrom.secretKeyRef.name).toBeTruthy();
    }
    // The Jobs' pods may reach DNS and PostgreSQL only; that policy is an earlier hook.
    const jobPolicy = byKind(objects, 'NetworkPolicy').find((p) =>
      p.metadata.name.endsWith('-migrations'),
    )!;
    expect(jobPolicy.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(Number(jobPolicy.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(0);
    expect(jobPolicy.spec.podSelector.matchExpressions[0].values.sort()).toEqual(
      services.map((s) => `${s}-migration`),
    );
    for (const job of jobs)
      expect(job.spec.template.metadata.labels).toEqual(
        expect.objectContaining(jobPolicy.spec.podSelector.matchLabels),
      );
    expect(flows(jobPolicy)).toEqual(
      [
        `out ${values.postgresql.networkPeers?.length ? peer(values.postgresql.networkPeers[0]) : 'any'} -> ${values.postgresql.port}`,
        'out ns:kube-system -> 53',
      ].sort(),
    );
    // Anything a hook Job reads on install must itself exist before it: a chart Secret is an earlier hook.
    for (const s of byKind(objects, 'Secret')) {
      expect(s.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
      expect(Number(s.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(0);
    }
  });

  it('keeps secrets out of ConfigMaps and reads them from Secrets', () => {
    for (const cm of byKind(objects, 'ConfigMap')) {
      for (const [k, v] of Object.entries(cm.data ?? {})) {
        expect(SECRET_VARS).not.toContain(k);
        // A URL with user:password@ is a secret.
        expect(`${k}=${v}`).not.toMatch(/:\/\/[^/@\s]*:[^/@\s$]+@/);
      }
    }
    for (const svc of services) {
      const env = containerEnv(objects, svc);
      for (const v of env.filter((e) => SECRET_VARS.includes(e.name)))
        expect({ [v.name]: v.valueFrom?.secretKeyRef?.name }).toEqual({
          [v.name]: expect.any(String),
        });
      expect(env.some((e) => e.name === 'DATABASE_URL')).toBe(true);
      if (values.services[svc].keyEncryption)
        expect(env.find((e) => e.name === 'KEY_ENCRYPTION_KEYS')?.valueFrom?.secretKeyRef).toEqual(
          expect.objectContaining({ name: expect.any(String) }),
        );
      // A service that calls others holds its own signing key (from a Secret), no other one does.
      const signing = env.find((e) => e.name === 'INTERNAL_CALL_SIGNING_KEYS');
      const sk = values.services[svc].internalCalls?.signingKeys ?? {};
      expect([svc, signing?.valueFrom?.secretKeyRef]).toEqual([
        svc,
        values.services[svc].calls?.length
          ? sk.existingSecret
            ? { name: sk.existingSecret, key: sk.secretKey }
            : {
                name: 'lk-latchkey-credentials',
                key: `${svc.toUpperCase()}_INTERNAL_CALL_SIGNING_KEYS`,
              }
          : undefined,
      ]);
    }
  });

  it("keeps a test cluster's inline signing keys in the chart's Secret, matching the public keys", () => {
    const svcs = values.services as Record<string, Json>;
    const secret = objects.find(
      (o) => o.kind === 'Secret' && o.metadata.name === 'lk-latchkey-credentials',
    );
    for (const svc of services.filter((s) => svcs[s].calls?.length)) {
      const inline = svcs[svc].internalCalls?.signingKeys?.keys as string | undefined;
      const stored = secret?.stringData?.[`${svc.toUpperCase()}_INTERNAL_CALL_SIGNING_KEYS`];
      expect([svc, stored]).toEqual([svc, inline || undefined]);
      if (!inline) continue;
      const x = [...parseInternalCallSigningKeys(inline).values()].map(
        (k) => createPublicKey(k).export({ format: 'jwk' }).x,
      );
      expect(x).toEqual((svcs[svc].internalCalls.publicKeys as { x: string }[]).map((k) => k.x));
    }
  });

  it("trusts, in each callee's ConfigMap, the public keys of exactly the services that call it", () => {
    const svcs = values.services as Record<string, Json>;
    for (const svc of services) {
      const text = containerEnv(objects, svc).find((e) => e.name === 'INTERNAL_CALL_TRUSTED_KEYS');
      const callers = services.filter((c) => (svcs[c].calls ?? []).includes(svc));
      if (!svcs[svc].internalCalls?.serves) {
        expect([svc, text]).toEqual([svc, undefined]);
        continue;
      }
      expect(text?.valueFrom).toBeUndefined(); // plain ConfigMap value: public keys only
      expect(text?.value).not.toMatch(/"d"/);
      const trusted = parseInternalCallTrustedKeys(text!.value!);
      expect([svc, [...trusted.keys()].sort()]).toEqual([svc, callers.sort()]);
      for (const c of callers)
        expect([...trusted.get(c)!.keys()]).toEqual(
          (svcs[c].internalCalls.publicKeys as { kid: string }[]).map((k) => k.kid),
        );
    }
  });

  it('lets each pod talk only as the architecture says (NetworkPolicy)', () => {
    const v = values;
    const svcs = v.services as Record<string, Json>;
    // services.<name>.calls may open only the gRPC calls of ARCHITECTURE.md.
    for (const [name, s] of Object.entries(svcs))
      for (const callee of s.calls) expect(`${name} -> ${callee}`).toMatch(ARCHITECTURE_CALLS);
    const exposed = (s: string) => Boolean(svcs[s].expose?.host) || Boolean(svcs[s].expose?.grpc);
    const exposedPorts = (s: string) =>
      [svcs[s].expose?.host ? 'http' : '', svcs[s].expose?.grpc ? 'grpc' : '']
        .filter(Boolean)
        .join(',');
    const first = (peers: Json[] | undefined) => (peers?.length ? peer(peers[0]) : 'any');
    // The server port, and in sentinel/cluster mode the ports of the listed nodes.
    const redisPort = [
      String(v.redis.port),
      ...[...v.redis.sentinel.nodes, ...v.redis.cluster.nodes].map((n: string) => n.split(':')[1]),
    ]
      .filter((p, i, all) => all.indexOf(p) === i)
      .join(',');
    const otlp = Boolean(v.commonEnv.OTEL_EXPORTER_OTLP_ENDPOINT);
    for (const svc of services) {
      const s = svcs[svc];
      const callers = services.filter((c) => svcs[c].calls.includes(svc));
      const verifiers = services.filter((c) => svcs[c].tokens === 'verifier');
      const want = [
        ...(exposed(svc)
          ? [`in ${first(v.networkPolicy.ingressFrom)} -> ${exposedPorts(svc)}`]
          : []),
        `in ${first(v.networkPolicy.metricsFrom)} -> http`,
        ...callers.map((c) => `in pods:${c} -> grpc`),
        ...(s.tokens === 'issuer' ? verifiers.map((c) => `in pods:${c} -> http`) : []),
        `out ns:kube-system -> 53`,
        `out ${first(v.kafka.networkPeers)} -> ${v.kafka.ports.join(',')}`,
        `out ${first(v.postgresql.networkPeers)} -> ${v.postgresql.port}`,
        ...(s.redis ? [`out ${first(v.redis.networkPeers)} -> ${redisPort}`] : []),
        ...s.calls.map((c: string) => `out pods:${c} -> ${svcs[c].ports.grpc}`),
        ...(s.tokens === 'verifier' ? [`out pods:auth -> ${svcs.auth.ports.http}`] : []),
        ...(otlp ? [`out ${first(v.networkPolicy.otlpTo)} -> 4318`] : []),
      ].sort();
      const policy = forComponent(objects, 'NetworkPolicy', svc);
      expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect({ [svc]: flows(policy) }).toEqual({ [svc]: want });
    }
    // Nothing but the verifiers reaches auth's HTTP port from inside; audit is reachable by nobody's gRPC.
    const auth = flows(forComponent(objects, 'NetworkPolicy', 'auth'));
    expect(auth.filter((f) => f.startsWith('in pods:'))).toEqual(
      ['provisioning', 'registration', 'audit']
        .filter((c) => services.includes(c))
        .map((c) => `in pods:${c} -> http`)
        .sort(),
    );
  });

  it('scales with an HPA and protects availability with a PDB where more than one pod runs', () => {
    for (const svc of services) {
      const s = values.services[svc];
      const d = forComponent(objects, 'Deployment', svc);
      const hpa = byKind(objects, 'HorizontalPodAutoscaler').find((o) => component(o) === svc);
      const pdb = byKind(objects, 'PodDisruptionBudget').find((o) => component(o) === svc);
      if (s.autoscaling.enabled) {
        expect(d.spec.replicas).toBeUndefined(); // the HPA owns it
        expect(hpa?.spec.scaleTargetRef).toEqual({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: d.metadata.name,
        });
        expect(hpa?.spec.minReplicas).toBe(s.autoscaling.minReplicas);
      } else {
        expect(hpa).toBeUndefined();
        expect(d.spec.replicas).toBe(s.replicas);
      }
      const minPods = s.autoscaling.enabled ? s.autoscaling.minReplicas : s.replicas;
      if (minPods >= 2) expect(pdb?.spec.selector).toEqual(d.spec.selector);
      else expect(pdb).toBeUndefined(); // a PDB on one pod would block every node drain
      expect(d.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    }
  });

  it('spreads pods over zones and nodes when topologySpread is enabled', () => {
    for (const d of byKind(objects, 'Deployment')) {
      const keys = (podSpec(d).topologySpreadConstraints ?? []).map((t: Json) => t.topologyKey);
      expect(keys).toEqual(
        values.topologySpread.enabled
          ? ['topology.kubernetes.io/zone', 'kubernetes.io/hostname']
          : [],
      );
    }
  });
});

describe('device traffic', () => {
  it('routes HTTP by host and gRPC by service name through an Ingress with TLS (minimal)', () => {
    const objects = render('minimal');
    const [http, grpc] = ['lk-latchkey-http', 'lk-latchkey-grpc'].map((n) =>
      byKind(objects, 'Ingress').find((i) => i.metadata.name === n),
    );
    const v = valuesOf('minimal');
    const exposed = Object.entries(v.services as Record<string, Json>).filter(
      ([, s]) => s.expose.host,
    );
    expect(http!.spec.rules.map((r: Json) => r.host).sort()).toEqual(
      exposed.map(([, s]) => s.expose.host).sort(),
    );
    expect(http!.spec.tls[0].hosts.sort()).toEqual(exposed.map(([, s]) => s.expose.host).sort());
    expect(grpc!.spec.tls[0].hosts).toEqual([v.ingress.grpcHost]);
    expect(grpc!.metadata.annotations?.['nginx.ingress.kubernetes.io/backend-protocol']).toBe(
      'GRPC',
    );
    const grpcPaths = grpc!.spec.rules[0].http.paths.map(
      (p: Json) => `${p.path} -> ${p.backend.service.name}:${p.backend.service.port.name}`,
    );
    expect(grpcPaths.sort()).toEqual([
      '/latchkey.auth.v1.AdminService -> lk-latchkey-auth:grpc',
      '/latchkey.auth.v1.AuthService -> lk-latchkey-auth:grpc',
      '/latchkey.provisioning.v1.ProvisioningService -> lk-latchkey-provisioning:grpc',
      '/latchkey.registration.v1.RegistrationService -> lk-latchkey-registration:grpc',
    ]);
  });

  it('attaches an HTTPRoute per exposed service and one GRPCRoute to the Gateway (redis-cluster-sasl)', () => {
    const objects = render('redis-cluster-sasl');
    expect(
      byKind(objects, 'HTTPRoute')
        .map((r) => r.spec.hostnames[0])
        .sort(),
    ).toEqual([
      'audit.id.example.com',
      'auth.id.example.com',
      'provisioning.id.example.com',
      'registration.id.example.com',
    ]);
    const [route] = byKind(objects, 'GRPCRoute');
    expect(route!.spec.parentRefs).toEqual([
      { name: 'public', namespace: 'gateway', sectionName: 'https' },
    ]);
    expect(route!.spec.rules.map((r: Json) => r.matches[0].method.service).sort()).toEqual([
      'latchkey.auth.v1.AdminService',
      'latchkey.auth.v1.AuthService',
      'latchkey.provisioning.v1.ProvisioningService',
      'latchkey.registration.v1.RegistrationService',
    ]);
    expect(byKind(objects, 'Ingress')).toEqual([]);
  });

  it("routes exactly the gRPC services each service's proto files declare", () => {
    const v = valuesOf('default');
    for (const [svc, s] of Object.entries(v.services as Record<string, Json>)) {
      const dir = join(ROOT, 'proto', 'latchkey', svc, 'v1');
      const declared = readdirSync(dir)
        .filter((f) => f.endsWith('.proto'))
        .flatMap((f) => {
          const text = readFileSync(join(dir, f), 'utf8');
          const pkg = /^package\s+([\w.]+);/m.exec(text)?.[1];
          return [...text.matchAll(/^service\s+(\w+)/gm)].map((m) => `${pkg}.${m[1]}`);
        });
      expect({ [svc]: [...s.grpcServices].sort() }).toEqual({ [svc]: declared.sort() });
    }
  });
});

describe('external Kafka, Redis and PostgreSQL (redis-cluster-sasl)', () => {
  const env = (svc: string) => containerEnv(render('redis-cluster-sasl'), svc);
  const value = (svc: string, name: string) => env(svc).find((e) => e.name === name);

  it('connects to Kafka over TLS with SCRAM, the password from the KafkaUser Secret', () => {
    expect(value('audit', 'KAFKA_SSL')?.value).toBe('true');
    expect(value('audit', 'KAFKA_SSL_CA_FILE')?.value).toBe('/etc/latchkey/kafka/ca.crt');
    expect(value('audit', 'KAFKA_SASL_MECHANISM')?.value).toBe('scram-sha-512');
    expect(value('audit', 'KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: 'latchkey-kafka-user',
      key: 'password',
    });
  });

  it('connects to the Redis Cluster over TLS, the password from its Secret', () => {
    expect(value('auth', 'REDIS_MODE')?.value).toBe('cluster');
    expect(value('auth', 'REDIS_CLUSTER_NODES')?.value?.split(',')).toEqual([
      'redis-cluster-0.redis-cluster-headless.redis.svc:6379',
      'redis-cluster-1.redis-cluster-headless.redis.svc:6379',
      'redis-cluster-2.redis-cluster-headless.redis.svc:6379',
    ]);
    expect(value('auth', 'REDIS_TLS')?.value).toBe('true');
    expect(value('auth', 'REDIS_TLS_CA_FILE')?.value).toBe('/etc/latchkey/redis/ca.crt');
    expect(value('auth', 'REDIS_TLS_SERVERNAME')?.value).toBe('redis-cluster-headless.redis.svc');
    expect(value('auth', 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: 'redis-cluster',
      key: 'redis-password',
    });
    expect(value('auth', 'REDIS_URL')).toBeUndefined();
    expect(value('registration', 'REDIS_MODE')).toBeUndefined();
    expect(value('registration', 'REDIS_PASSWORD')).toBeUndefined();
  });

  it('mounts every CA and client certificate it names in a variable', () => {
    for (const set of Object.keys(VALUE_SETS)) {
      const objects = render(set);
      for (const svc of enabledServices(set)) {
        const container = podSpec(forComponent(objects, 'Deployment', svc)).containers[0];
        const mounts: string[] = container.volumeMounts.map((m: Json) => m.mountPath);
        const files = containerEnv(objects, svc).filter((e) => /_FILE$/.test(e.name));
        for (const f of files) {
          const dir = f.value!.slice(0, f.value!.lastIndexOf('/'));
          expect({ [`${set} ${svc} ${f.name}`]: mounts.includes(dir) }).toEqual({
            [`${set} ${svc} ${f.name}`]: true,
          });
        }
      }
    }
  });

  it('reaches Redis through Sentinel over mutual TLS, and Kafka with a client certificate (redis-sentinel-mtls)', () => {
    const objects = render('redis-sentinel-mtls');
    const get = (svc: string, n: string) => containerEnv(objects, svc).find((e) => e.name === n);
    expect(get('auth', 'REDIS_MODE')?.value).toBe('sentinel');
    expect(get('auth', 'REDIS_SENTINEL_MASTER_NAME')?.value).toBe('latchkey');
    expect(get('auth', 'REDIS_DATABASE')?.value).toBe('1');
    expect(get('auth', 'REDIS_USERNAME')?.value).toBe('latchkey');
    expect(get('auth', 'REDIS_TLS_CERT_FILE')?.value).toBe('/etc/latchkey/redis-client/tls.crt');
    for (const n of ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'])
      expect(get('provisioning', n)?.valueFrom?.secretKeyRef).toEqual({
        name: 'redis',
        key: 'redis-password',
      });
    expect(get('audit', 'KAFKA_SSL_CERT_FILE')?.value).toBe('/etc/latchkey/kafka-client/user.crt');
    expect(get('audit', 'KAFKA_SASL_MECHANISM')).toBeUndefined();
    const volumes = podSpec(forComponent(objects, 'Deployment', 'audit')).volumes;
    expect(volumes.find((v: Json) => v.name === 'kafka-client-cert')?.secret).toEqual({
      secretName: 'latchkey',
      items: [
        { key: 'user.crt', path: 'user.crt' },
        { key: 'user.key', path: 'user.key' },
      ],
    });
  });

  it('refuses a database other than 0 for a Redis Cluster', () => {
    const r = template([VALUE_SETS['redis-cluster-sasl']![0]!], ['redis.database=2']);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/redis\.database is 2 but a Redis Cluster has database 0 only/);
  });

  it('names the Sentinels and the master set for Redis Sentinel, and opens both ports', () => {
    const r = template(
      [],
      ['redis.mode=sentinel', 'redis.sentinel.nodes={sentinel-0:26379,sentinel-1:26379}'],
    );
    expect(r.ok).toBe(true);
    const objects = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    const env = containerEnv(objects, 'auth');
    const get = (n: string) => env.find((e) => e.name === n)?.value;
    expect(get('REDIS_SENTINELS')).toBe('sentinel-0:26379,sentinel-1:26379');
    expect(get('REDIS_SENTINEL_MASTER_NAME')).toBe('mymaster');
    const redisRule = forComponent(objects, 'NetworkPolicy', 'auth').spec.egress.find((e: Json) =>
      e.ports.some((p: Json) => p.port === 26379),
    );
    expect(redisRule.ports.map((p: Json) => p.port).sort()).toEqual([26379, 6379]);
  });

  it("reads each service's DATABASE_URL from its CloudNativePG Secret", () => {
    expect(value('auth', 'DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({
      name: 'latchkey-auth-app',
      key: 'uri',
    });
  });

  it('creates a Strimzi KafkaTopic for every topic of the event catalogue', () => {
    const topics = byKind(render('redis-cluster-sasl'), 'KafkaTopic').map((t) => t.spec.topicName);
    expect(topics.sort()).toEqual(Object.values(Topics).sort());
  });

  it('scrapes /metrics with a ServiceMonitor and ships the documented alerts', () => {
    const objects = render('redis-cluster-sasl');
    const [sm] = byKind(objects, 'ServiceMonitor');
    expect(sm!.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '30s' }]);
    const [rule] = byKind(objects, 'PrometheusRule');
    const alerts = rule!.spec.groups.flatMap((g: Json) => g.rules.map((r: Json) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        'LatchkeySignInFailureRatioHigh',
        'LatchkeyOutboxLagging',
        'LatchkeyAuditConsumerLagging',
        'LatchkeyAuditChainVerificationFailed',
      ]),
    );
    const readme = readFileSync(join(ROOT, 'deploy/helm/latchkey/README.md'), 'utf8');
    for (const a of alerts) expect({ [a]: readme.includes(`### ${a}`) }).toEqual({ [a]: true });
  });
});

/** Metric names (prom-client `name: '...'`) defined in the services' and libs' sources. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'generated' && entry.name !== 'node_modules') walk(path);
      } else if (entry.name.endsWith('.ts') && !/\.(e2e-)?spec\.ts$/.test(entry.name)) {
        for (const m of readFileSync(path, 'utf8').matchAll(/name:\s*['"`](latchkey_[a-z0-9_]+)/g))
          names.add(m[1]!);
      }
    }
  };
  for (const top of ['apps', 'libs'])
    for (const project of readdirSync(join(ROOT, top))) {
      const src = join(ROOT, top, project, 'src');
      if (existsSync(src)) walk(src);
    }
  return names;
}

describe('alert rules and the metrics the services export', () => {
  const rule = byKind(render('redis-cluster-sasl'), 'PrometheusRule')[0]!;
  const used = new Set<string>(
    rule.spec.groups
      .flatMap((g: Json) => g.rules.map((r: Json) => String(r.expr)))
      .flatMap((e: string) => [...e.matchAll(/\b(latchkey_[a-z0-9_]+)/g)].map((m) => m[1]!)),
  );
  const exported = exportedMetrics();

  it('uses only latchkey metrics the code exports', () => {
    const unknown = [...used].filter((m) => !exported.has(m));
    expect(unknown).toEqual([]);
    // Each alert of the issue rests on a metric of the code (consumer lag on Kafka Exporter's).
    expect([...used].sort()).toEqual([
      'latchkey_audit_chain_verification_failures_total',
      'latchkey_outbox_oldest_unpublished_age_seconds',
      'latchkey_sign_in_attempts_total',
    ]);
  });
});

describe('invalid values', () => {
  it.each([
    [
      'a negative replica count',
      ['services.auth.replicas=-1'],
      /services\/auth\/replicas.*minimum/s,
    ],
    [
      'a missing KEK secret name',
      ['keyEncryption.existingSecret='],
      /keyEncryption\/existingSecret.*(minLength|length)/s,
    ],
    [
      'no database Secret for a service',
      ['postgresql.existingSecret='],
      /services\.\w+ needs a database URL: set postgresql\.existingSecret/,
    ],
    [
      'a literal DATABASE_URL in a ConfigMap variable',
      ['commonEnv.DATABASE_URL=postgresql://u:p@db/x'],
      /commonEnv\/DATABASE_URL/,
    ],
    ['a Kafka broker without a port', ['kafka.brokers={kafka}'], /kafka\/brokers\/0/],
    [
      'SASL without a password Secret',
      ['kafka.sasl.enabled=true'],
      /kafka\.sasl\.existingSecret is empty/,
    ],
    ['Redis Cluster without nodes', ['redis.mode=cluster'], /redis\/cluster/],
    ['an unknown Redis mode', ['redis.mode=replicated'], /redis\/mode/],
    ['root containers', ['securityContext.runAsNonRoot=false'], /securityContext\/runAsNonRoot/],
    ['a misspelt top-level key', ['replicas=3'], /additional properties 'replicas'/],
    [
      'a call to a service the chart does not have',
      ['services.auth.calls={directory}'],
      /services\.auth\.calls names "directory"/,
    ],
    [
      'autoscaling with min above max',
      ['services.auth.autoscaling.minReplicas=9', 'services.auth.autoscaling.maxReplicas=3'],
      /minReplicas \(9\) is greater than maxReplicas \(3\)/,
    ],
    ['an issuer that is not a URL', ['tokens.issuer=auth'], /tokens\/issuer/],
    [
      'both an Ingress and Gateway routes',
      ['ingress.enabled=true', 'gateway.enabled=true', 'gateway.parentRefs[0].name=public'],
      /ingress\.enabled and gateway\.enabled are both true/,
    ],
    ['Gateway routes without a Gateway', ['gateway.enabled=true'], /gateway\.parentRefs is empty/],
    [
      'a caller without its signing-key Secret',
      ['services.auth.internalCalls.signingKeys.existingSecret='],
      /services\.auth\.internalCalls\.signingKeys\.existingSecret is empty: auth calls registration, provisioning/,
    ],
    [
      'a private key among the public keys',
      ['services.auth.internalCalls.publicKeys[0].d=AAAA'],
      /services\/auth\/internalCalls\/publicKeys\/0.*additional properties 'd'/s,
    ],
    [
      'a public key of another type',
      ['services.auth.internalCalls.publicKeys[0].crv=P-256'],
      /services\/auth\/internalCalls\/publicKeys\/0\/crv/,
    ],
    [
      'a callee no enabled service calls',
      ['services.auth.enabled=false', 'services.provisioning.enabled=false'],
      /services\.registration\.internalCalls\.serves is true but no enabled service calls it/,
    ],
  ])('rejects %s with a message naming it', (_what, set, message) => {
    const r = template([], set);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(message);
  });

  it("rejects an install that does not name a calling service's public key", () => {
    const r = templateBare([]);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(
      /services\.(auth|provisioning)\.internalCalls\.publicKeys is empty: \w+ calls \w+, which must trust/,
    );
    expect(r.output).toMatch(/tools\/scripts\/internal-call-keys\.mjs/);
  });
});
