/**
 * A request frame that does not decode as its message (truncated, garbled, a
 * field with the wrong wire type) is the caller's error: INVALID_ARGUMENT
 * (reason MALFORMED_REQUEST), as a malformed JSON body is over HTTP. grpc-js
 * answers INTERNAL when the deserializer throws, so the deserializers of the
 * package definition return a marker instead, and a global guard turns the
 * marker into the error before any handler (or other guard) sees it.
 *
 * The same guard refuses text with U+0000 anywhere in a request (gRPC message,
 * HTTP body, query or path): PostgreSQL cannot store it in text columns, so
 * such a value would otherwise fail at the database as an internal error.
 */
import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { PackageDefinition } from '@grpc/proto-loader';
import { DomainError } from '../errors/domain-error';

const MALFORMED = Symbol.for('latchkey.malformedRequestMessage');

interface Deserializing {
  requestDeserialize?: (bytes: Buffer) => unknown;
}

/** Makes every method of `pkg` hand over a marker rather than throw on an undecodable request. */
export function tolerateMalformedMessages(pkg: PackageDefinition): void {
  for (const entry of Object.values(pkg)) {
    if ('format' in entry) continue; // a message or enum type, not a service
    for (const method of Object.values(entry as Record<string, Deserializing>)) {
      const decode = method.requestDeserialize;
      if (typeof decode !== 'function') continue;
      method.requestDeserialize = (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return { [MALFORMED]: err instanceof Error ? err.message : String(err) };
        }
      };
    }
  }
}

export function isMalformedMessage(data: unknown): boolean {
  return typeof data === 'object' && data !== null && MALFORMED in data;
}

/** True when a string anywhere in `value` (objects, arrays; not bytes) contains U+0000. */
export function containsNul(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return true;
    } else if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\u0000')) return true;
        stack.push(x);
      }
    }
  }
  return false;
}

@Injectable()
export class MalformedRequestGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    let parts: unknown[] = [];
    if (context.getType() === 'rpc') {
      const data = context.switchToRpc().getData<unknown>();
      if (isMalformedMessage(data))
        throw DomainError.invalidArgument(
          'MALFORMED_REQUEST',
          'the request message could not be decoded',
        );
      parts = [data];
    } else if (context.getType() === 'http') {
      const req = context
        .switchToHttp()
        .getRequest<{ body?: unknown; query?: unknown; params?: unknown }>();
      parts = [req.body, req.query, req.params];
    }
    if (parts.some(containsNul))
      throw DomainError.invalidArgument('MALFORMED_REQUEST', 'text must not contain U+0000');
    return true;
  }
}
