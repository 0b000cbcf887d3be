import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, protoFile } from '@latchkey/contracts';
import type { ExecutionContext } from '@nestjs/common';
import { DomainError } from '../errors/domain-error';
import {
  containsNul,
  isMalformedMessage,
  MalformedRequestGuard,
  tolerateMalformedMessages,
} from './malformed-messages';

function rpcContext(data: unknown): ExecutionContext {
  return {
    getType: () => 'rpc',
    switchToRpc: () => ({ getData: () => data }),
  } as unknown as ExecutionContext;
}

function httpContext(req: object): ExecutionContext {
  return {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
}

describe('malformed requests', () => {
  const pkg = loadSync(protoFile('registration'), PROTO_LOADER_OPTIONS);
  tolerateMalformedMessages(pkg);
  const getDevice = (
    pkg['latchkey.registration.v1.RegistrationService'] as unknown as Record<
      string,
      { requestDeserialize(b: Buffer): unknown; requestSerialize(o: object): Buffer }
    >
  ).GetDevice!;

  it('decodes a good frame as before and marks an undecodable one instead of throwing', () => {
    const good = getDevice.requestSerialize({ tenantId: 't', deviceId: 'd' });
    expect(getDevice.requestDeserialize(good)).toMatchObject({ tenantId: 't', deviceId: 'd' });
    // The tag of field 1 (string) and then nothing: not even its length.
    const truncated = getDevice.requestDeserialize(Buffer.from([0x0a]));
    expect(isMalformedMessage(truncated)).toBe(true);
    expect(isMalformedMessage({ tenantId: 't' })).toBe(false);
  });

  it('refuses the marker and NUL characters as INVALID_ARGUMENT MALFORMED_REQUEST', () => {
    const guard = new MalformedRequestGuard();
    const marker = getDevice.requestDeserialize(Buffer.from([0x0a]));
    for (const ctx of [
      rpcContext(marker),
      rpcContext({ tenantId: 't', reason: 'a\u0000b' }),
      httpContext({ body: { nested: [{ x: '\u0000' }] }, query: {}, params: {} }),
      httpContext({ body: {}, query: {}, params: { tenantId: '\u0000' } }),
    ]) {
      let thrown: unknown;
      try {
        guard.canActivate(ctx);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(DomainError);
      expect(thrown).toMatchObject({ kind: 'INVALID_ARGUMENT', reason: 'MALFORMED_REQUEST' });
    }
    expect(guard.canActivate(rpcContext({ tenantId: 't', crl: Buffer.from([0, 0]) }))).toBe(true);
    expect(guard.canActivate(httpContext({ body: { a: ['b'] }, query: {}, params: {} }))).toBe(
      true,
    );
  });

  it('finds NUL in keys and deep values without recursion', () => {
    let deep: unknown = 'x\u0000';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(containsNul(deep)).toBe(true);
    expect(containsNul({ 'k\u0000': 1 })).toBe(true);
    expect(containsNul({ a: { b: 'c' } })).toBe(false);
  });
});
