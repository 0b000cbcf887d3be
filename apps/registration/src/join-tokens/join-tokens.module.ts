import { Module } from '@nestjs/common';
import { TenantsModule } from '../tenants/tenants.module';
import { JoinTokensGrpcController } from './join-tokens.grpc.controller';
import { JoinTokensHttpController } from './join-tokens.http.controller';
import { JoinTokens } from './join-tokens.service';

@Module({
  imports: [TenantsModule],
  controllers: [JoinTokensGrpcController, JoinTokensHttpController],
  providers: [JoinTokens],
  exports: [JoinTokens],
})
export class JoinTokensModule {}
