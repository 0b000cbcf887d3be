/** Promise-based gRPC clients for tests, loaded from the same protos and options as the services. */
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  type ServiceError,
  type Client,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  GRPC_PACKAGES,
  type GrpcServiceName,
  PROTO_LOADER_OPTIONS,
  PROTO_ROOT,
  protoFile,
} from '@latchkey/contracts';
import { join } from 'node:path';

export type UnaryClient = Record<
  string,
  (request: object, metadata?: Metadata) => Promise<Record<string, unknown>>
> & { close(): void };

export function grpcClient(service: GrpcServiceName, address: string): UnaryClient {
  const info = GRPC_PACKAGES[service];
  const def = loadSync(protoFile(service), PROTO_LOADER_OPTIONS);
  let pkg: Record<string, unknown> = loadPackageDefinition(def) as Record<string, unknown>;
  for (const part of info.package.split('.')) pkg = pkg[part] as Record<string, unknown>;
  const Ctor = pkg[info.service] as new (
    address: string,
    creds: ReturnType<typeof credentials.createInsecure>,
  ) => Client;
  const raw = new Ctor(address, credentials.createInsecure()) as unknown as Record<
    string,
    unknown
  > &
    Client;
  return new Proxy({} as UnaryClient, {
    get(_t, prop: string) {
      if (prop === 'close') return () => raw.close();
      const method = raw[prop] as
        | ((
            req: object,
            md: Metadata,
            opts: object,
            cb: (err: ServiceError | null, res: unknown) => void,
          ) => void)
        | undefined;
      if (typeof method !== 'function') return undefined;
      return (request: object, metadata = new Metadata()) =>
        new Promise((resolve, reject) => {
          method.call(raw, request, metadata, { deadline: Date.now() + 15000 }, (err, res) =>
            err ? reject(err) : resolve(res as Record<string, unknown>),
          );
        });
    },
  });
}

export function reasonOf(err: unknown): string | undefined {
  const md = (err as ServiceError | undefined)?.metadata;
  const v = md?.get('latchkey-reason')[0];
  return v === undefined ? undefined : String(v);
}

export { Metadata };

/**
 * A promise client of latchkey.auth.v1's AuthService or AdminService (AdminService
 * has its own proto file, outside GRPC_PACKAGES), with proto method names.
 */
export function authClient(service: 'AuthService' | 'AdminService', address: string): UnaryClient {
  const file = service === 'AdminService' ? 'admin.proto' : 'auth.proto';
  const def = loadSync(join(PROTO_ROOT, 'latchkey/auth/v1', file), PROTO_LOADER_OPTIONS);
  const pkg = loadPackageDefinition(def) as unknown as {
    latchkey: {
      auth: { v1: Record<string, new (a: string, c: unknown) => Record<string, unknown>> };
    };
  };
  const raw = new pkg.latchkey.auth.v1[service]!(address, credentials.createInsecure());
  return new Proxy({} as UnaryClient, {
    get(_t, prop: string) {
      if (prop === 'close') return () => (raw.close as () => void).call(raw);
      const method = raw[prop] as (
        req: object,
        md: Metadata,
        opts: object,
        cb: (err: ServiceError | null, res: unknown) => void,
      ) => void;
      return (request: object, metadata = new Metadata()) =>
        new Promise((resolve, reject) =>
          method.call(raw, request, metadata, { deadline: Date.now() + 15000 }, (err, res) =>
            err ? reject(err) : resolve(res as Record<string, unknown>),
          ),
        );
    },
  });
}

/** Metadata carrying `token` as a bearer access token. */
export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}
