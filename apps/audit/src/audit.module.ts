import { type DynamicModule, Module } from '@nestjs/common';
import { EventsModule } from '@latchkey/events';
import { accessTokenVerifierProvider, prismaProvider } from '@latchkey/service-kit';
import { type AuditConfig, AUDIT_CONFIG } from './config';
import { PrismaClient } from './generated/prisma/client';
import { AUDIT_CONSUMER, ChainModule } from './chain/chain.module';
import { AuditKeysHttpController } from './checkpoints/audit-keys.http.controller';
import { AuditQueryService } from './records/audit-query.service';
import { RecordsGrpcController } from './records/records.grpc.controller';
import { RecordsHttpController } from './records/records.http.controller';
import { RetentionHttpController } from './retention/retention.http.controller';
import { RetentionService } from './retention/retention.service';
import { AuditStreamPublisher } from './stream/audit-stream.publisher';
import { ChainVerificationMetrics } from './verification/chain-verification-metrics';
import { ChainVerifier } from './verification/chain-verifier.service';

@Module({
  imports: [ChainModule],
  controllers: [
    RecordsGrpcController,
    RecordsHttpController,
    AuditKeysHttpController,
    RetentionHttpController,
  ],
  providers: [
    accessTokenVerifierProvider,
    AuditQueryService,
    ChainVerifier,
    ChainVerificationMetrics,
    RetentionService,
    AuditStreamPublisher,
  ],
})
class AuditApiModule {}

@Module({})
export class AuditModule {
  static forRoot(config: AuditConfig): DynamicModule {
    return {
      module: AuditModule,
      imports: [
        {
          module: class DatabaseModule {},
          global: true,
          providers: [prismaProvider(PrismaClient), { provide: AUDIT_CONFIG, useValue: config }],
          exports: [PrismaClient, AUDIT_CONFIG],
        },
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-audit',
          topics: [...config.AUDIT_TOPICS, config.AUDIT_STREAM_TOPIC, config.AUDIT_DLQ_TOPIC],
          consumer: AUDIT_CONSUMER,
          imports: [ChainModule],
        }),
        AuditApiModule,
      ],
    };
  }
}
