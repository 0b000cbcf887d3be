/** gRPC face of key sign-in (AuthService.SignInWithKey, RefreshWithPrt, RevokeSessions). */
import { Controller, Inject, UseGuards } from '@nestjs/common';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { GrpcMethod } from '@nestjs/microservices';
import { authV1, toTimestamp } from '@latchkey/contracts';
import { AccessTokenGuard, principalOf, RequireRoles } from '@latchkey/service-kit';
import { peerAddress } from '../sign-in/sign-in.grpc.controller';
import { type KeySessionTokens, KeySignInService } from './key-sign-in.service';

function toProtoTokens(t: KeySessionTokens): authV1.KeySessionTokens {
  return {
    idToken: t.idToken,
    accessToken: t.accessToken,
    tokenType: t.tokenType,
    accessTokenExpireTime: toTimestamp(t.accessTokenExpiresAt),
    refreshToken: t.refreshToken,
    refreshTokenExpireTime: toTimestamp(t.refreshTokenExpiresAt),
    sessionId: t.sessionId,
  };
}

@Controller()
export class KeySignInGrpcController {
  constructor(@Inject(KeySignInService) private readonly keySignIn: KeySignInService) {}

  @GrpcMethod('AuthService', 'SignInWithKey')
  async signInWithKey(
    req: authV1.SignInWithKeyRequest,
    _md: Metadata,
    call: ServerUnaryCall<unknown, unknown>,
  ): Promise<authV1.SignInWithKeyResponse> {
    const r = await this.keySignIn.signInWithKey(req, peerAddress(call));
    return { tokens: toProtoTokens(r.tokens), sessionKeyJwe: r.sessionKeyJwe };
  }

  @GrpcMethod('AuthService', 'RefreshWithPrt')
  async refreshWithPrt(
    req: authV1.RefreshWithPrtRequest,
    _md: Metadata,
    call: ServerUnaryCall<unknown, unknown>,
  ): Promise<authV1.RefreshWithPrtResponse> {
    const r = await this.keySignIn.refresh(req, peerAddress(call));
    return { tokens: toProtoTokens(r.tokens) };
  }

  @GrpcMethod('AuthService', 'RevokeSessions')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async revokeSessions(
    req: authV1.RevokeSessionsRequest,
    md: Metadata,
  ): Promise<authV1.RevokeSessionsResponse> {
    return this.keySignIn.revokeSessions(req, principalOf(md));
  }
}
