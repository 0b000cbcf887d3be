/**
 * Where latchkey's gRPC services live and how their protos are loaded: the
 * part of the contracts a plain gRPC client needs (the device agent imports
 * it alone, without the generated Nest decorators of ./gen).
 */
import * as path from 'path';
import type { Options as ProtoLoaderOptions } from '@grpc/proto-loader';

/**
 * Absolute path of the proto/ directory (the proto include root).
 * Resolves to <repo>/proto when running from libs/contracts/src and to
 * dist/proto when running the build output (dist/libs/contracts/src), which is
 * why the build copies proto/ to dist/proto.
 */
export const PROTO_ROOT: string = path.resolve(__dirname, '../../../proto');

/** Where a gRPC service lives: its proto package, file (relative to PROTO_ROOT) and service name. */
export interface GrpcPackageInfo {
  /** Fully qualified proto package, e.g. "latchkey.registration.v1". */
  readonly package: string;
  /** Path of the .proto file relative to PROTO_ROOT. */
  readonly protoPath: string;
  /** Service name inside the package, e.g. "RegistrationService". */
  readonly service: string;
}

/** The gRPC services of latchkey, by owning service. */
export const GRPC_PACKAGES = {
  registration: {
    package: 'latchkey.registration.v1',
    protoPath: 'latchkey/registration/v1/registration.proto',
    service: 'RegistrationService',
  },
  provisioning: {
    package: 'latchkey.provisioning.v1',
    protoPath: 'latchkey/provisioning/v1/provisioning.proto',
    service: 'ProvisioningService',
  },
  auth: {
    package: 'latchkey.auth.v1',
    protoPath: 'latchkey/auth/v1/auth.proto',
    service: 'AuthService',
  },
  audit: {
    package: 'latchkey.audit.v1',
    protoPath: 'latchkey/audit/v1/audit.proto',
    service: 'AuditService',
  },
} as const satisfies Record<string, GrpcPackageInfo>;

/** Name of a latchkey service that serves gRPC: "registration" | "provisioning" | "auth" | "audit". */
export type GrpcServiceName = keyof typeof GRPC_PACKAGES;

/** Absolute path of a service's .proto file. */
export function protoFile(service: GrpcServiceName): string {
  return path.join(PROTO_ROOT, GRPC_PACKAGES[service].protoPath);
}

/**
 * @grpc/proto-loader options used by every gRPC server and client of latchkey
 * (Nest: `options.loader`). The generated types in ./gen assume exactly these.
 * `includeDirs` lets imports such as "google/protobuf/timestamp.proto" and
 * "latchkey/…" resolve; proto-loader bundles Google's well-known types.
 */
export const PROTO_LOADER_OPTIONS: ProtoLoaderOptions & { includeDirs: string[] } = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};
