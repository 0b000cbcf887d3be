/** What every command calls: one service, whatever the transport; and the error of a refusal or an outage. */
import { status } from '@grpc/grpc-js';
import type { GrpcServiceName } from '@latchkey/contracts/grpc-packages';

export interface ServiceClient {
  call(method: string, request: object, accessToken?: string): Promise<Record<string, unknown>>;
  close(): void;
}

/** A refusal or an outage of a service, with the machine-readable reason it sent. */
export class ServiceCallError extends Error {
  constructor(
    readonly service: GrpcServiceName,
    readonly method: string,
    readonly code: number,
    readonly reason: string | undefined,
    readonly detail: string,
  ) {
    super(
      `${service}.${method}: ${status[code] ?? code}${reason ? ` (${reason})` : ''}: ${detail}`,
    );
    this.name = 'ServiceCallError';
  }

  get unreachable(): boolean {
    return this.code === status.UNAVAILABLE || this.code === status.DEADLINE_EXCEEDED;
  }
}
