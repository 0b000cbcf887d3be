import { Module } from '@nestjs/common';
import { SigningKeysModule } from '../signing-keys/signing-keys.module';
import { MfaTicketStore } from './mfa-ticket-store';
import { SignInGrpcController } from './sign-in.grpc.controller';
import { SignInHttpController } from './sign-in.http.controller';
import { SignInMetrics } from './sign-in-metrics';
import { SignInService } from './sign-in.service';
import { SignInThrottle } from './sign-in-throttle';

@Module({
  imports: [SigningKeysModule],
  controllers: [SignInGrpcController, SignInHttpController],
  providers: [SignInService, SignInThrottle, MfaTicketStore, SignInMetrics],
  exports: [SignInMetrics],
})
export class SignInModule {}
