import { Module } from '@nestjs/common';
import { JoinTokensModule } from '../join-tokens/join-tokens.module';
import { TenantsModule } from '../tenants/tenants.module';
import { DeviceAssertionJtis } from './device-assertion-jtis';
import { DeviceRegistry } from './device-registry.service';
import { DevicesGrpcController } from './devices.grpc.controller';
import { DevicesHttpController } from './devices.http.controller';
import { RegistrationWriter } from './registration-writer';

@Module({
  imports: [TenantsModule, JoinTokensModule],
  controllers: [DevicesGrpcController, DevicesHttpController],
  providers: [DeviceRegistry, RegistrationWriter, DeviceAssertionJtis],
})
export class DevicesModule {}
