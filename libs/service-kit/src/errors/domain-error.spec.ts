import { status } from '@grpc/grpc-js';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { DomainError, toDomainError, toProblemDetails } from './domain-error';
import { encodeStatusDetails, toGrpcStatus } from './grpc-status';

describe('error mapping', () => {
  const bad = DomainError.invalidArgument('INVALID_DEVICE_REGISTRATION', 'csrPem: must be PEM', [
    { field: 'csrPem', description: 'must be PEM' },
  ]);

  it('maps a domain error to a gRPC status with the reason in metadata', () => {
    const s = toGrpcStatus(bad);
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(s.details).toBe('csrPem: must be PEM');
    expect(s.metadata?.get('latchkey-reason')).toEqual(['INVALID_DEVICE_REGISTRATION']);
  });

  it('encodes google.rpc.Status with an ErrorInfo carrying the reason', () => {
    const r = new BinaryReader(encodeStatusDetails(bad));
    const fields: Record<number, unknown[]> = {};
    while (r.pos < r.len) {
      const [no, wire] = r.tag();
      const v = wire === 0 ? r.int32() : r.bytes();
      (fields[no] ??= []).push(v);
    }
    expect(fields[1]).toEqual([status.INVALID_ARGUMENT]);
    expect(Buffer.from(fields[2]![0] as Uint8Array).toString()).toBe('csrPem: must be PEM');
    const anys = (fields[3] as Uint8Array[]).map((b) => Buffer.from(b).toString('latin1'));
    expect(anys[0]).toContain('type.googleapis.com/google.rpc.ErrorInfo');
    expect(anys[0]).toContain('INVALID_DEVICE_REGISTRATION');
    expect(anys[1]).toContain('type.googleapis.com/google.rpc.BadRequest');
  });

  it('maps a domain error to RFC 9457 problem details', () => {
    expect(toProblemDetails(bad, '/v1/devices')).toEqual({
      type: 'https://latchkey.dev/problems/invalid-device-registration',
      title: 'invalid argument',
      status: 400,
      detail: 'csrPem: must be PEM',
      reason: 'INVALID_DEVICE_REGISTRATION',
      instance: '/v1/devices',
      violations: [{ field: 'csrPem', description: 'must be PEM' }],
    });
  });

  it('turns a refused connection (even nested as a cause) into UNAVAILABLE', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
    });
    expect(toDomainError(new Error('query failed', { cause: refused })).kind).toBe('UNAVAILABLE');
    expect(toDomainError(Object.assign(new Error('x'), { code: '53300' })).kind).toBe(
      'UNAVAILABLE',
    );
    expect(toDomainError(Object.assign(new Error('x'), { code: 'P2028' })).kind).toBe(
      'UNAVAILABLE',
    );
    expect(toDomainError(Object.assign(new Error('x'), { code: 'P1001' })).kind).toBe(
      'UNAVAILABLE',
    );
  });

  it('hides the message of an unexpected error', () => {
    const e = toDomainError(new Error('secret internals: password=hunter2'));
    expect(e.kind).toBe('INTERNAL');
    expect(e.message).toBe('internal error');
  });
});
