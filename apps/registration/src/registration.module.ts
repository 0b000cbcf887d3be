import { type DynamicModule, Module } from '@nestjs/common';
import { KeyEncryption } from '@latchkey/crypto';
import { EventsModule, Topics } from '@latchkey/events';
import {
  AccessTokenVerifier,
  accessTokenVerifierProvider,
  InternalCallVerifier,
  internalCallVerifierProvider,
  PG_POOL,
  pgPoolProvider,
  prismaProvider,
} from '@latchkey/service-kit';
import { REGISTRATION_CONFIG, type RegistrationConfig } from './config';
import { DevicesModule } from './devices/devices.module';
import { PrismaClient } from './generated/prisma/client';
import { JoinTokensModule } from './join-tokens/join-tokens.module';
import { TENANT_EVENTS_CONSUMER, TenantsModule } from './tenants/tenants.module';

@Module({})
export class RegistrationModule {
  static forRoot(config: RegistrationConfig): DynamicModule {
    return {
      module: RegistrationModule,
      imports: [
        {
          module: class InfrastructureModule {},
          global: true,
          providers: [
            prismaProvider(PrismaClient),
            pgPoolProvider(PrismaClient),
            { provide: REGISTRATION_CONFIG, useValue: config },
            {
              provide: KeyEncryption,
              useFactory: () => new KeyEncryption(config.KEY_ENCRYPTION_KEYS),
            },
            accessTokenVerifierProvider,
            internalCallVerifierProvider,
          ],
          exports: [
            PrismaClient,
            PG_POOL,
            REGISTRATION_CONFIG,
            KeyEncryption,
            AccessTokenVerifier,
            InternalCallVerifier,
          ],
        },
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-registration',
          topics: [Topics.device, Topics.auth, Topics.registrationDlq],
          outboxDatabase: PrismaClient,
          consumer: TENANT_EVENTS_CONSUMER,
          imports: [TenantsModule],
        }),
        TenantsModule,
        JoinTokensModule,
        DevicesModule,
      ],
    };
  }
}
