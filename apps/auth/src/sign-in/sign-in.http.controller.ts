/** HTTPS JSON face of primary sign-in, same semantics as gRPC. */
import { Body, Controller, HttpCode, Inject, Ip, Post } from '@nestjs/common';
import { SignInService } from './sign-in.service';

@Controller('v1/sign-in')
export class SignInHttpController {
  constructor(@Inject(SignInService) private readonly signIn: SignInService) {}

  @Post('password')
  @HttpCode(200)
  async password(@Body() body: unknown, @Ip() ip: string) {
    const r = await this.signIn.signInWithPassword(body, ip);
    return {
      mfaTicket: r.mfaTicket,
      expireTime: r.expiresAt.toISOString(),
      totpEnrollmentRequired: r.totpEnrollmentRequired,
    };
  }

  @Post('totp-enrollment')
  @HttpCode(200)
  async enrollTotp(@Body() body: unknown) {
    return this.signIn.enrollTotp(body);
  }

  @Post('mfa')
  @HttpCode(200)
  async mfa(@Body() body: unknown, @Ip() ip: string) {
    const r = await this.signIn.completeMfa(body, ip);
    return {
      accessToken: r.accessToken,
      tokenType: r.tokenType,
      expireTime: r.expiresAt.toISOString(),
    };
  }
}
