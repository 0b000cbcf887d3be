/**
 * A client for one latchkey gRPC service, for service-to-service lookups
 * (auth → registration/provisioning, provisioning → registration). Each call
 * has a deadline; NOT_FOUND is an answer (null); anything else — the peer
 * down, slow or failing — is UNAVAILABLE with the given reason, so that the
 * caller fails closed.
 */
import { type Client, credentials, loadPackageDefinition, Metadata, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { GRPC_PACKAGES, PROTO_LOADER_OPTIONS, protoFile } from '@latchkey/contracts';
import { DomainError } from '../errors/domain-error';
import { INTERNAL_CALL_METADATA, type InternalCallSigner } from './internal-call';

type Unary = (
  req: object,
  metadata: Metadata,
  options: { deadline: number },
  cb: (err: (Error & { code?: number }) | null, res?: Record<string, unknown>) => void,
) => void;

export type GrpcServiceName = keyof typeof GRPC_PACKAGES;

export interface InternalGrpcClientOptions {
  /** host:port of the peer. */
  address: string;
  /** Deadline of each call. */
  timeoutMs: number;
  /** Reason and message of the UNAVAILABLE error when the peer gives no answer. */
  unavailableReason: string;
  unavailableMessage: string;
  /** Signs each call as this service's (the peer refuses internal calls without it). */
  signer: InternalCallSigner;
}

export class InternalGrpcClient {
  private readonly client: Client & Record<string, Unary | undefined>;

  constructor(
    private readonly service: GrpcServiceName,
    private readonly options: InternalGrpcClientOptions,
  ) {
    const info = GRPC_PACKAGES[service];
    let pkg = loadPackageDefinition(loadSync(protoFile(service), PROTO_LOADER_OPTIONS)) as Record<
      string,
      unknown
    >;
    for (const part of info.package.split('.')) pkg = pkg[part] as Record<string, unknown>;
    const Ctor = pkg[info.service] as new (
      address: string,
      creds: ReturnType<typeof credentials.createInsecure>,
    ) => Client & Record<string, Unary | undefined>;
    this.client = new Ctor(options.address, credentials.createInsecure());
  }

  /** The answer; null for NOT_FOUND; rejects with UNAVAILABLE for everything else. */
  async call(method: string, req: object): Promise<Record<string, unknown> | null> {
    const unavailable = () =>
      DomainError.unavailable(this.options.unavailableReason, this.options.unavailableMessage);
    const fn = this.client[method];
    if (typeof fn !== 'function') throw unavailable();
    const metadata = new Metadata();
    metadata.set(INTERNAL_CALL_METADATA, await this.options.signer.tokenFor(this.service));
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + this.options.timeoutMs;
      fn.call(this.client, req, metadata, { deadline }, (err, res) => {
        if (!err) return resolve(res ?? null);
        if (err.code === status.NOT_FOUND) return resolve(null);
        if (err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED) {
          // Still UNAVAILABLE for our caller (fail closed), but saying why: the
          // peer does not trust this service's signing key (INTERNAL_CALL_TRUSTED_KEYS), or it
          // does not serve this service.
          return reject(
            DomainError.unavailable(
              'INTERNAL_CALL_REFUSED',
              `the ${this.service} service refused this service's internal call`,
            ),
          );
        }
        reject(unavailable());
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
