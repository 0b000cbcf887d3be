import { Module } from '@nestjs/common';
import { type BatchEventConsumerOptions, DOMAIN_TOPICS, Topics } from '@latchkey/events';
import type { AuditConfig } from '../config';
import { AuditQueryService } from './audit-query.service';
import { AuditRecorder } from './audit-recorder.service';
import { RecordsGrpcController } from './records.grpc.controller';
import { RecordsHttpController } from './records.http.controller';

export const AUDIT_CONSUMER = Symbol('AUDIT_CONSUMER');

@Module({
  controllers: [RecordsGrpcController, RecordsHttpController],
  providers: [
    AuditRecorder,
    AuditQueryService,
    {
      provide: AUDIT_CONSUMER,
      useFactory: (recorder: AuditRecorder, config: AuditConfig): BatchEventConsumerOptions => ({
        groupId: config.AUDIT_CONSUMER_GROUP,
        topics: DOMAIN_TOPICS,
        deadLetterTopic: Topics.auditDlq,
        handle: async (events) => {
          await recorder.record(events);
        },
      }),
      inject: [AuditRecorder, 'AUDIT_CONFIG'],
    },
  ],
  exports: [AUDIT_CONSUMER],
})
export class RecordsModule {}
