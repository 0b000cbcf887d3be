/** gRPC face of primary sign-in (AuthService.SignInWithPassword, EnrollTotp, CompleteMfa). */
import { Controller, Inject } from '@nestjs/common';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { GrpcMethod } from '@nestjs/microservices';
import { authV1, toTimestamp } from '@latchkey/contracts';
import { SignInService } from './sign-in.service';

/** "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" → the address. */
export function peerAddress(call?: ServerUnaryCall<unknown, unknown>): string | undefined {
  const peer = call?.getPeer?.();
  if (!peer) return undefined;
  const m = /^(?:ipv4:|ipv6:)?\[?([^\]]+?)\]?(?::\d+)?$/.exec(peer);
  return (m?.[1] ?? peer).slice(0, 64);
}

@Controller()
export class SignInGrpcController {
  constructor(@Inject(SignInService) private readonly signIn: SignInService) {}

  @GrpcMethod('AuthService', 'SignInWithPassword')
  async signInWithPassword(
    req: authV1.SignInWithPasswordRequest,
    _md: Metadata,
    call: ServerUnaryCall<unknown, unknown>,
  ): Promise<authV1.SignInWithPasswordResponse> {
    const r = await this.signIn.signInWithPassword(req, peerAddress(call));
    return {
      mfaTicket: r.mfaTicket,
      expireTime: toTimestamp(r.expiresAt),
      totpEnrollmentRequired: r.totpEnrollmentRequired,
    };
  }

  @GrpcMethod('AuthService', 'EnrollTotp')
  async enrollTotp(req: authV1.EnrollTotpRequest): Promise<authV1.EnrollTotpResponse> {
    return this.signIn.enrollTotp(req);
  }

  @GrpcMethod('AuthService', 'CompleteMfa')
  async completeMfa(
    req: authV1.CompleteMfaRequest,
    _md: Metadata,
    call: ServerUnaryCall<unknown, unknown>,
  ): Promise<authV1.CompleteMfaResponse> {
    const r = await this.signIn.completeMfa(req, peerAddress(call));
    return {
      accessToken: r.accessToken,
      tokenType: r.tokenType,
      expireTime: toTimestamp(r.expiresAt),
    };
  }
}
