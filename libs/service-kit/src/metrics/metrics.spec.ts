import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import express from 'express';
import {
  grpcMethodLabel,
  grpcRequestMetrics,
  httpOutcome,
  httpRequestMetrics,
  MetricsRegistry,
} from './metrics';

/** The value of one series of latchkey_requests_total, or 0 when it does not exist. */
async function count(metrics: MetricsRegistry, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.requests.get();
  const hit = values.find((v) =>
    Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x),
  );
  return hit?.value ?? 0;
}

async function latencyCount(metrics: MetricsRegistry, method: string): Promise<number> {
  const { values } = await metrics.latency.get();
  const hit = values.find(
    (v) => v.metricName === 'latchkey_request_duration_seconds_count' && v.labels.method === method,
  );
  return hit?.value ?? 0;
}

describe('request metrics labels', () => {
  it('names a gRPC method by service and method, without the package', () => {
    expect(grpcMethodLabel('/latchkey.auth.v1.AuthService/GetNonce')).toBe('AuthService.GetNonce');
    expect(grpcMethodLabel('/grpc.health.v1.Health/Check')).toBe('Health.Check');
    expect(grpcMethodLabel('/Plain/Call')).toBe('Plain.Call');
    expect(grpcMethodLabel('not a path')).toBe('unknown');
  });

  it('maps HTTP statuses to the error kinds the exception filter answers with', () => {
    expect(httpOutcome(200)).toBe('OK');
    expect(httpOutcome(304)).toBe('OK');
    expect(httpOutcome(400)).toBe('INVALID_ARGUMENT');
    expect(httpOutcome(401)).toBe('UNAUTHENTICATED');
    expect(httpOutcome(404)).toBe('NOT_FOUND');
    expect(httpOutcome(412)).toBe('FAILED_PRECONDITION');
    expect(httpOutcome(429)).toBe('RESOURCE_EXHAUSTED');
    expect(httpOutcome(503)).toBe('UNAVAILABLE');
    expect(httpOutcome(418)).toBe('INVALID_ARGUMENT');
    expect(httpOutcome(502)).toBe('INTERNAL');
  });
});

describe('grpcRequestMetrics (a real grpc-js server and client)', () => {
  const healthProto = require.resolve('grpc-health-check/proto/health/v1/health.proto');
  const { Health } = (
    grpc.loadPackageDefinition(protoLoader.loadSync(healthProto)) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    }
  ).grpc.health.v1;
  const metrics = new MetricsRegistry();
  let server: grpc.Server;
  let client: grpc.Client & Record<string, (...a: unknown[]) => unknown>;

  beforeAll(async () => {
    server = new grpc.Server({ interceptors: [grpcRequestMetrics(metrics)] });
    server.addService(Health.service, {
      check: (
        call: grpc.ServerUnaryCall<{ service: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) =>
        call.request.service === 'fail'
          ? cb({ code: grpc.status.PERMISSION_DENIED, details: 'no' })
          : cb(null, { status: 1 }),
      watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as typeof client;
  });
  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  const check = (service: string) =>
    new Promise<grpc.StatusObject | undefined>((resolve) =>
      (client.check as (r: object, cb: (e: grpc.ServiceError | null) => void) => void)(
        { service },
        (err) => resolve(err ?? undefined),
      ),
    );

  it('counts and times each call by method and outcome', async () => {
    expect(await check('')).toBeUndefined();
    expect(await check('')).toBeUndefined();
    expect((await check('fail'))?.code).toBe(grpc.status.PERMISSION_DENIED);

    const method = 'Health.Check';
    expect(await count(metrics, { transport: 'rpc', method, outcome: 'OK' })).toBe(2);
    expect(await count(metrics, { transport: 'rpc', method, outcome: 'PERMISSION_DENIED' })).toBe(
      1,
    );
    expect(await latencyCount(metrics, method)).toBe(3);
  });
});

describe('httpRequestMetrics (a real HTTP server)', () => {
  const metrics = new MetricsRegistry();
  let base: string;
  let close: () => void;

  beforeAll(async () => {
    const app = express();
    app.use(httpRequestMetrics(metrics));
    app.get('/v1/devices/:id', (req, res) => {
      if (req.params.id === 'missing') res.status(404).end();
      else res.json({ id: req.params.id });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  afterAll(() => close());

  it('labels requests by the matched route, never by the raw path', async () => {
    for (const id of ['a', 'b', 'missing']) await (await fetch(`${base}/v1/devices/${id}`)).text();
    await (await fetch(`${base}/no/such/route`)).text();
    // The response has been sent before 'close' fires on the server side: let it.
    await new Promise((r) => setTimeout(r, 50));

    const method = 'GET /v1/devices/:id';
    expect(await count(metrics, { transport: 'http', method, outcome: 'OK' })).toBe(2);
    expect(await count(metrics, { transport: 'http', method, outcome: 'NOT_FOUND' })).toBe(1);
    expect(await count(metrics, { transport: 'http', method: 'unmatched' })).toBe(1);
    const { values } = await metrics.requests.get();
    expect(values.some((v) => String(v.labels.method).includes('/v1/devices/a'))).toBe(false);
    expect(await latencyCount(metrics, method)).toBe(3);
  });
});
