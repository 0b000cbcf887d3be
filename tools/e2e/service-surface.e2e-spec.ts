/**
 * What every service offers operators and clients: gRPC health and reflection,
 * HTTP liveness/readiness, Prometheus metrics, and problem+json errors.
 */
import { credentials, loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';
import { join, dirname } from 'node:path';
import { GRPC_PACKAGES } from '@latchkey/contracts';
import { grpcAddress, httpBase } from '@latchkey/testing';

const SERVICES = ['registration', 'provisioning', 'auth', 'audit'] as const;

type Ctor = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
) => Record<string, unknown> & {
  close(): void;
};

function lookup(root: GrpcObject, path: string): Ctor {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root) as Ctor;
}

const health = lookup(
  loadPackageDefinition(loadSync(healthProto, { enums: String })),
  'grpc.health.v1.Health',
);
const reflectionProto = join(
  dirname(require.resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1/reflection.proto',
);
const reflection = lookup(
  loadPackageDefinition(loadSync(reflectionProto)),
  'grpc.reflection.v1.ServerReflection',
);

describe.each(SERVICES)('%s service surface', (service) => {
  const info = GRPC_PACKAGES[service];
  const fullName = `${info.package}.${info.service}`;

  it('reports SERVING on grpc.health.v1 for the server and its service', async () => {
    const client = new health(grpcAddress(service), credentials.createInsecure());
    const check = (name: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        (
          client.Check as (
            req: object,
            cb: (e: Error | null, r: { status: string }) => void,
          ) => void
        ).call(client, { service: name }, (e, r) => (e ? reject(e) : resolve(r))),
      );
    expect((await check('')).status).toBe('SERVING');
    expect((await check(fullName)).status).toBe('SERVING');
    client.close();
  });

  it('lists its API through gRPC server reflection', async () => {
    const client = new reflection(grpcAddress(service), credentials.createInsecure());
    const call = (
      client.ServerReflectionInfo as () => NodeJS.ReadWriteStream & {
        write(m: object): void;
        end(): void;
      }
    ).call(client);
    const names = await new Promise<string[]>((resolve, reject) => {
      call.on('data', (m: { listServicesResponse?: { service: { name: string }[] } }) =>
        resolve(m.listServicesResponse?.service.map((s) => s.name) ?? []),
      );
      call.on('error', reject);
      call.write({ listServices: '' });
    });
    call.end();
    client.close();
    expect(names).toContain(fullName);
  });

  it('answers /healthz and a /readyz that lists its real dependencies', async () => {
    expect((await fetch(`${httpBase(service)}/healthz`)).status).toBe(200);
    const ready = await fetch(`${httpBase(service)}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { checks: Record<string, { ok: boolean }> };
    expect(body.checks.postgres?.ok).toBe(true);
    if (service === 'auth' || service === 'provisioning') expect(body.checks.redis?.ok).toBe(true);
  });

  it('exports Prometheus metrics', async () => {
    const res = await fetch(`${httpBase(service)}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^# HELP latchkey_requests_total /m);
    expect(text).toMatch(/^latchkey_process_resident_memory_bytes \d+/m);
  });

  it('answers an unknown route with application/problem+json', async () => {
    const res = await fetch(`${httpBase(service)}/no/such/route`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 404, reason: 'ROUTE_NOT_FOUND' });
  });
});

describe('HTTP errors', () => {
  it('answers a malformed JSON body with 400 problem+json and changes nothing', async () => {
    const res = await fetch(`${httpBase('registration')}/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"tenantId": ',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 400, reason: 'MALFORMED_REQUEST' });
  });
});
