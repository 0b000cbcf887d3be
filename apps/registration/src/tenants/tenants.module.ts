import { Module } from '@nestjs/common';
import { REGISTRATION_CONFIG } from '../config';
import { CertificateRevocationList } from './certificate-revocation.service';
import { DevicePolicies } from './device-policy.service';
import { TenantDirectory } from './tenant-directory.service';
import { tenantEventsConsumer } from './tenant-events.consumer';
import { TenantsGrpcController } from './tenants.grpc.controller';
import { TenantsHttpController } from './tenants.http.controller';

export const TENANT_EVENTS_CONSUMER = Symbol('TENANT_EVENTS_CONSUMER');

@Module({
  controllers: [TenantsGrpcController, TenantsHttpController],
  providers: [
    TenantDirectory,
    CertificateRevocationList,
    DevicePolicies,
    {
      provide: TENANT_EVENTS_CONSUMER,
      useFactory: tenantEventsConsumer,
      inject: [TenantDirectory, REGISTRATION_CONFIG],
    },
  ],
  exports: [TenantDirectory, CertificateRevocationList, DevicePolicies, TENANT_EVENTS_CONSUMER],
})
export class TenantsModule {}
