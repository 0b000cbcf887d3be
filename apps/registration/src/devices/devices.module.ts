import { Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { DeviceKeyChecker } from '@latchkey/crypto';
import { REGISTRATION_CONFIG, type RegistrationConfig } from '../config';
import { JoinTokensModule } from '../join-tokens/join-tokens.module';
import { TenantsModule } from '../tenants/tenants.module';
import { DeviceAssertionJtis } from './device-assertion-jtis';
import { DeviceRegistry } from './device-registry.service';
import { DevicesGrpcController } from './devices.grpc.controller';
import { DevicesHttpController } from './devices.http.controller';
import { RegistrationWriter } from './registration-writer';

/** Ends the key-check worker threads when the application stops. */
@Injectable()
class DeviceKeyCheckerShutdown implements OnApplicationShutdown {
  constructor(@Inject(DeviceKeyChecker) private readonly checker: DeviceKeyChecker) {}

  onApplicationShutdown(): Promise<void> {
    return this.checker.close();
  }
}

@Module({
  imports: [TenantsModule, JoinTokensModule],
  controllers: [DevicesGrpcController, DevicesHttpController],
  providers: [
    DeviceRegistry,
    RegistrationWriter,
    DeviceAssertionJtis,
    {
      provide: DeviceKeyChecker,
      inject: [REGISTRATION_CONFIG],
      useFactory: (config: RegistrationConfig) =>
        new DeviceKeyChecker(config.REGISTRATION_KEY_CHECK_WORKERS),
    },
    DeviceKeyCheckerShutdown,
  ],
})
export class DevicesModule {}
