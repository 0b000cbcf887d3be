/**
 * Encodes a DomainError as a gRPC error using Google's richer error model:
 * `grpc-status-details-bin` carries google.rpc.Status with an ErrorInfo (the
 * reason) and, for bad input, a BadRequest listing the fields. The reason is
 * also sent as plain `latchkey-reason` metadata for simple clients.
 */
import { Metadata, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { DomainError, GRPC_CODE } from './domain-error';

export const ERROR_DOMAIN = 'latchkey.dev';

function any(typeUrl: string, value: Uint8Array): Uint8Array {
  return new BinaryWriter().uint32(10).string(typeUrl).uint32(18).bytes(value).finish();
}

function errorInfo(reason: string): Uint8Array {
  return new BinaryWriter().uint32(10).string(reason).uint32(18).string(ERROR_DOMAIN).finish();
}

function badRequest(err: DomainError): Uint8Array {
  const w = new BinaryWriter();
  for (const v of err.violations) {
    w.uint32(10).fork().uint32(10).string(v.field).uint32(18).string(v.description).join();
  }
  return w.finish();
}

export function encodeStatusDetails(err: DomainError): Uint8Array {
  const code = GRPC_CODE[err.kind];
  const w = new BinaryWriter().uint32(8).int32(code).uint32(18).string(err.message);
  w.uint32(26).bytes(any('type.googleapis.com/google.rpc.ErrorInfo', errorInfo(err.reason)));
  if (err.violations.length) {
    w.uint32(26).bytes(any('type.googleapis.com/google.rpc.BadRequest', badRequest(err)));
  }
  return w.finish();
}

export function toGrpcStatus(
  err: DomainError,
): Partial<StatusObject> & Pick<ServiceError, 'message'> {
  const metadata = new Metadata();
  metadata.set('latchkey-reason', err.reason);
  metadata.set('grpc-status-details-bin', Buffer.from(encodeStatusDetails(err)));
  return { code: GRPC_CODE[err.kind], details: err.message, message: err.message, metadata };
}
