/**
 * @latchkey/contracts — the gRPC contracts of latchkey.
 *
 * Everything under ./gen is generated from proto/ by ts-proto
 * (`npx nx run contracts:generate`) and must never be edited by hand; this barrel
 * and ./grpc-packages (where the services live and how their protos load,
 * importable alone by clients that carry no Nest: `@latchkey/contracts/grpc-packages`)
 * are the only hand-written source files of the library. They import nothing
 * from other @latchkey libraries.
 *
 * The generated types describe the objects that Nest's gRPC transport hands to
 * handlers when the .proto files are loaded with PROTO_LOADER_OPTIONS:
 * camelCase fields, enums as their full value names (e.g. "JOIN_TYPE_JOINED"),
 * int64 as decimal strings, google.protobuf.Timestamp as { seconds: string; nanos: number },
 * and unset message fields as null.
 */
import type { Timestamp } from './gen/google/protobuf/timestamp';

export * as registrationV1 from './gen/latchkey/registration/v1/registration';
export * as authV1 from './gen/latchkey/auth/v1/auth';
export * as provisioningV1 from './gen/latchkey/provisioning/v1/provisioning';
export * as auditV1 from './gen/latchkey/audit/v1/audit';
export * as googleProtobuf from './gen/google/protobuf/timestamp';
export type { Timestamp } from './gen/google/protobuf/timestamp';

export * from './grpc-packages';

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
