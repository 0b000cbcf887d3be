import { Module } from '@nestjs/common';
import { DeviceRegistry } from './device-registry.service';
import { DevicesGrpcController } from './devices.grpc.controller';
import { DevicesHttpController } from './devices.http.controller';

@Module({
  controllers: [DevicesGrpcController, DevicesHttpController],
  providers: [DeviceRegistry],
})
export class DevicesModule {}
