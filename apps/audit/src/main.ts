/** latchkey audit service. */
import './instrument';
import 'reflect-metadata';
import { GRPC_PACKAGES, PROTO_LOADER_OPTIONS, PROTO_ROOT } from '@latchkey/contracts';
import { bootstrapService } from '@latchkey/service-kit';
import { AuditModule } from './audit.module';
import { auditConfigShape } from './config';

const grpc = GRPC_PACKAGES.audit;

void bootstrapService({
  name: 'audit',
  configShape: auditConfigShape,
  grpc: {
    package: grpc.package,
    protoPath: grpc.protoPath,
    protoRoot: PROTO_ROOT,
    services: [`${grpc.package}.${grpc.service}`],
    loaderOptions: PROTO_LOADER_OPTIONS,
  },
  module: (config) => AuditModule.forRoot(config),
});
