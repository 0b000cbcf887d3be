/**
 * Clients of the latchkey services: gRPC (loaded from the contracts' protos with
 * the services' own loader options) or the HTTPS JSON APIs (./https-client),
 * chosen by the endpoints' protocol behind one interface.
 */
import { readFileSync } from 'node:fs';
import {
  type ChannelCredentials,
  type Client,
  credentials,
  loadPackageDefinition,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  GRPC_PACKAGES,
  type GrpcServiceName,
  PROTO_LOADER_OPTIONS,
  protoFile,
} from '@latchkey/contracts/grpc-packages';
import type { Endpoints } from './endpoints';
import { httpsServiceClient } from './https-client';
import { ServiceCallError, type ServiceClient } from './service-client';

export { ServiceCallError, type ServiceClient } from './service-client';

function channelCredentials(endpoints: Endpoints): ChannelCredentials {
  if (endpoints.transport.mode === 'plaintext') return credentials.createInsecure();
  const ca = endpoints.transport.caFile ? readFileSync(endpoints.transport.caFile) : undefined;
  return credentials.createSsl(ca);
}

/** A gRPC client of one service. */
export function grpcServiceClient(
  service: GrpcServiceName,
  endpoints: Endpoints,
  timeoutMs = 15_000,
): ServiceClient {
  const info = GRPC_PACKAGES[service];
  let pkg = loadPackageDefinition(loadSync(protoFile(service), PROTO_LOADER_OPTIONS)) as Record<
    string,
    unknown
  >;
  for (const part of info.package.split('.')) pkg = pkg[part] as Record<string, unknown>;
  const Ctor = pkg[info.service] as new (address: string, creds: ChannelCredentials) => Client;
  const raw = new Ctor(endpoints[service], channelCredentials(endpoints)) as unknown as Client &
    Record<string, unknown>;
  return {
    call(method, request, accessToken) {
      const fn = raw[method] as
        | ((
            req: object,
            md: Metadata,
            opts: object,
            cb: (err: ServiceError | null, res: unknown) => void,
          ) => void)
        | undefined;
      if (typeof fn !== 'function') throw new Error(`${service} has no method ${method}`);
      const md = new Metadata();
      if (accessToken) md.set('authorization', `Bearer ${accessToken}`);
      return new Promise((resolve, reject) =>
        fn.call(raw, request, md, { deadline: Date.now() + timeoutMs }, (err, res) => {
          if (!err) return resolve(res as Record<string, unknown>);
          const reason = err.metadata?.get('latchkey-reason')[0];
          reject(
            new ServiceCallError(
              service,
              method,
              err.code,
              reason === undefined ? undefined : String(reason),
              err.details || err.message,
            ),
          );
        }),
      );
    },
    close: () => raw.close(),
  };
}

/** One client per service, opened on first use and closed together. */
export class ServiceClients {
  private readonly open = new Map<GrpcServiceName, ServiceClient>();

  constructor(readonly endpoints: Endpoints) {}

  of(service: GrpcServiceName): ServiceClient {
    let c = this.open.get(service);
    if (!c) {
      c =
        this.endpoints.protocol === 'https'
          ? httpsServiceClient(service, this.endpoints)
          : grpcServiceClient(service, this.endpoints);
      this.open.set(service, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.open.values()) c.close();
    this.open.clear();
  }
}
