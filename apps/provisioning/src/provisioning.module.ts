import { type DynamicModule, Module } from '@nestjs/common';
import { EventsModule, Topics } from '@latchkey/events';
import {
  accessTokenVerifierProvider,
  AccessTokenVerifier,
  InternalCallSigner,
  internalCallSignerProvider,
  InternalCallVerifier,
  internalCallVerifierProvider,
  prismaProvider,
  REDIS,
  redisProvider,
} from '@latchkey/service-kit';
import type { ProvisioningConfig } from './config';
import { CREDENTIAL_EVENTS_CONSUMER, CredentialsModule } from './credentials/credentials.module';
import { PrismaClient } from './generated/prisma/client';
import { PoliciesModule } from './policies/policies.module';

@Module({})
export class ProvisioningModule {
  static forRoot(config: ProvisioningConfig): DynamicModule {
    return {
      module: ProvisioningModule,
      imports: [
        {
          module: class InfrastructureModule {},
          global: true,
          providers: [
            prismaProvider(PrismaClient),
            redisProvider,
            accessTokenVerifierProvider,
            internalCallVerifierProvider,
            internalCallSignerProvider,
          ],
          exports: [
            PrismaClient,
            REDIS,
            AccessTokenVerifier,
            InternalCallVerifier,
            InternalCallSigner,
          ],
        },
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-provisioning',
          topics: [Topics.credential, Topics.device, Topics.auth, Topics.provisioningDlq],
          outboxDatabase: PrismaClient,
          consumer: CREDENTIAL_EVENTS_CONSUMER,
          imports: [CredentialsModule],
        }),
        PoliciesModule,
        CredentialsModule,
      ],
    };
  }
}
