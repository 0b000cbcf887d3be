import { type DynamicModule, Module } from '@nestjs/common';
import { EventsModule, Topics } from '@latchkey/events';
import { prismaProvider } from '@latchkey/service-kit';
import type { RegistrationConfig } from './config';
import { DevicesModule } from './devices/devices.module';
import { PrismaClient } from './generated/prisma/client';

@Module({})
export class RegistrationModule {
  static forRoot(config: RegistrationConfig): DynamicModule {
    const database = prismaProvider(PrismaClient);
    return {
      module: RegistrationModule,
      imports: [
        {
          module: class DatabaseModule {},
          global: true,
          providers: [database],
          exports: [PrismaClient],
        },
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-registration',
          topics: [Topics.device],
          outboxDatabase: PrismaClient,
        }),
        DevicesModule,
      ],
    };
  }
}
