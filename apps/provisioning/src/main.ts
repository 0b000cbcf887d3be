/** latchkey provisioning service. */
import './instrument';
import 'reflect-metadata';
import { GRPC_PACKAGES, PROTO_LOADER_OPTIONS, PROTO_ROOT } from '@latchkey/contracts';
import { bootstrapService } from '@latchkey/service-kit';
import { provisioningConfigShape } from './config';
import { ProvisioningModule } from './provisioning.module';

const grpc = GRPC_PACKAGES.provisioning;

void bootstrapService({
  name: 'provisioning',
  configShape: provisioningConfigShape,
  grpc: {
    package: grpc.package,
    protoPath: grpc.protoPath,
    protoRoot: PROTO_ROOT,
    services: [`${grpc.package}.${grpc.service}`],
    loaderOptions: PROTO_LOADER_OPTIONS,
  },
  module: (config) => ProvisioningModule.forRoot(config),
});
