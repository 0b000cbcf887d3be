/** Low-level calls for the fuzz suites: raw gRPC frames, gRPC health, HTTP liveness. */
import {
  Client,
  credentials,
  loadPackageDefinition,
  Metadata,
  type GrpcObject,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';
import { grpcAddress, httpBase } from '@latchkey/testing';
import type { RpcInfo } from './contracts';
import type { StateProbe } from './state';
import type { Clients } from './tenants';

export interface Outcome {
  code: number;
  details: string;
}

const identity = (b: Buffer) => b;
const rawClients = new Map<string, Client>();

function rawClient(app: string): Client {
  let c = rawClients.get(app);
  if (!c) {
    c = new Client(grpcAddress(app), credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    rawClients.set(app, c);
  }
  return c;
}

/** Sends `frame` as the request message of `rpc`, bytes as they are (no serialization). */
export function callRaw(
  rpc: RpcInfo,
  frame: Buffer,
  metadata: Metadata,
  timeoutMs = 20_000,
): Promise<Outcome> {
  const client = rawClient(rpc.app);
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    if (rpc.responseStream) {
      const stream = client.makeServerStreamRequest(rpc.path, identity, identity, frame, metadata, {
        deadline,
      });
      stream.on('data', () => undefined);
      stream.on('error', () => undefined);
      stream.on('status', (s: { code: number; details: string }) =>
        resolve({ code: s.code, details: s.details }),
      );
    } else {
      client.makeUnaryRequest(
        rpc.path,
        identity,
        identity,
        frame,
        metadata,
        { deadline },
        (err: ServiceError | null) =>
          resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' }),
      );
    }
  });
}

export function closeRawClients(): void {
  for (const c of rawClients.values()) c.close();
  rawClients.clear();
}

/** After all of a suite's tests: closes its clients, the raw clients and its state probe. */
export async function closeSuite(c: Clients | undefined, probe: StateProbe | undefined) {
  c?.close();
  closeRawClients();
  await probe?.close();
}

type HealthCtor = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
) => Client & {
  Check(req: object, cb: (e: Error | null, r: { status: string }) => void): void;
};

const Health = (
  (loadPackageDefinition(loadSync(healthProto, { enums: String })) as GrpcObject).grpc as Record<
    string,
    Record<string, Record<string, unknown>>
  >
).health!.v1!.Health as unknown as HealthCtor;

/** The service still answers: gRPC health SERVING for `service` and HTTP /healthz 200. */
export async function healthy(
  app: string,
  service: string,
): Promise<{ grpc: string; http: number }> {
  const client = new Health(grpcAddress(app), credentials.createInsecure());
  try {
    const grpc = await new Promise<string>((resolve) =>
      client.Check({ service }, (e, r) => resolve(e ? `error ${e.message}` : r.status)),
    );
    const http = await fetch(`${httpBase(app)}/healthz`).then(
      (r) => r.status,
      () => 0,
    );
    return { grpc, http };
  } finally {
    client.close();
  }
}

export function withBearer(token: string | undefined): Metadata {
  const md = new Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return md;
}
