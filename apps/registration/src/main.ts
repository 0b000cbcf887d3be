/** latchkey device registration service. */
import './instrument';
import 'reflect-metadata';
import { GRPC_PACKAGES, PROTO_LOADER_OPTIONS, PROTO_ROOT } from '@latchkey/contracts';
import { bootstrapService } from '@latchkey/service-kit';
import { registrationConfigShape } from './config';
import { RegistrationModule } from './registration.module';

const grpc = GRPC_PACKAGES.registration;

void bootstrapService({
  name: 'registration',
  configShape: registrationConfigShape,
  grpc: {
    package: grpc.package,
    protoPath: grpc.protoPath,
    protoRoot: PROTO_ROOT,
    services: [`${grpc.package}.${grpc.service}`],
    loaderOptions: PROTO_LOADER_OPTIONS,
  },
  module: (config) => RegistrationModule.forRoot(config),
});
