import { Module } from '@nestjs/common';
import { JoinTokensModule } from '../join-tokens/join-tokens.module';
import { TenantsModule } from '../tenants/tenants.module';
import { DeviceRegistry } from './device-registry.service';
import { DevicesGrpcController } from './devices.grpc.controller';
import { DevicesHttpController } from './devices.http.controller';
import { RegistrationWriter } from './registration-writer';

@Module({
  imports: [TenantsModule, JoinTokensModule],
  controllers: [DevicesGrpcController, DevicesHttpController],
  providers: [DeviceRegistry, RegistrationWriter],
})
export class DevicesModule {}
