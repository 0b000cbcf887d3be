import { Inject, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { KafkaEventBus } from '@latchkey/events';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { NoncesModule } from '../nonces/nonces.module';
import { SignInModule } from '../sign-in/sign-in.module';
import { SigningKeysModule } from '../signing-keys/signing-keys.module';
import { DeviceLookups } from './device-lookups';
import { KeySignInGrpcController } from './key-sign-in.grpc.controller';
import { KeySignInHttpController } from './key-sign-in.http.controller';
import { KeySignInService } from './key-sign-in.service';

@Module({
  // SignInModule: its SignInMetrics counts key sign-ins and refreshes too (one counter).
  imports: [SigningKeysModule, NoncesModule, SignInModule],
  controllers: [KeySignInGrpcController, KeySignInHttpController],
  providers: [KeySignInService, DeviceLookups],
})
export class KeySignInModule implements OnApplicationBootstrap {
  constructor(
    @Inject(DeviceLookups) private readonly lookups: DeviceLookups,
    @Inject(KafkaEventBus) private readonly bus: KafkaEventBus,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.lookups.listen(this.bus, `${this.config.KAFKA_CLIENT_ID ?? 'latchkey-auth'}-lookups`);
  }
}
