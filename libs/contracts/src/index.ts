/**
 * @latchkey/contracts — the gRPC contracts of latchkey.
 *
 * Everything under ./gen is generated from proto/ by ts-proto
 * (`npx nx run contracts:generate`) and must never be edited by hand; this barrel
 * is the only hand-written source file of the library. It imports nothing from
 * other @latchkey libraries.
 *
 * The generated types describe the objects that Nest's gRPC transport hands to
 * handlers when the .proto files are loaded with PROTO_LOADER_OPTIONS:
 * camelCase fields, enums as their full value names (e.g. "JOIN_TYPE_JOINED"),
 * int64 as decimal strings, google.protobuf.Timestamp as { seconds: string; nanos: number },
 * and unset message fields as null.
 */
import * as path from 'path';
import type { Options as ProtoLoaderOptions } from '@grpc/proto-loader';
import type { Timestamp } from './gen/google/protobuf/timestamp';

export * as registrationV1 from './gen/latchkey/registration/v1/registration';
export * as authV1 from './gen/latchkey/auth/v1/auth';
export * as provisioningV1 from './gen/latchkey/provisioning/v1/provisioning';
export * as auditV1 from './gen/latchkey/audit/v1/audit';
export * as googleProtobuf from './gen/google/protobuf/timestamp';
export type { Timestamp } from './gen/google/protobuf/timestamp';

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

/** Converts a Date to a google.protobuf.Timestamp (millisecond precision). */
export function toTimestamp(date: Date): Timestamp {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('toTimestamp: invalid Date');
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** Converts a google.protobuf.Timestamp (seconds as string or number) to a Date (millisecond precision). */
export function fromTimestamp(ts: { seconds: string | number; nanos: number }): Date {
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000));
}
