import { type DynamicModule, Module } from '@nestjs/common';
import { DOMAIN_TOPICS, EventsModule, Topics } from '@latchkey/events';
import { prismaProvider } from '@latchkey/service-kit';
import type { AuditConfig } from './config';
import { PrismaClient } from './generated/prisma/client';
import { AUDIT_CONSUMER, RecordsModule } from './records/records.module';

@Module({})
export class AuditModule {
  static forRoot(config: AuditConfig): DynamicModule {
    return {
      module: AuditModule,
      imports: [
        {
          module: class DatabaseModule {},
          global: true,
          providers: [prismaProvider(PrismaClient), { provide: 'AUDIT_CONFIG', useValue: config }],
          exports: [PrismaClient, 'AUDIT_CONFIG'],
        },
        RecordsModule,
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-audit',
          topics: [...DOMAIN_TOPICS, Topics.audit, Topics.auditDlq],
          consumer: AUDIT_CONSUMER,
          imports: [RecordsModule],
        }),
      ],
    };
  }
}
