/** latchkey auth service. */
import './instrument';
import 'reflect-metadata';
import { GRPC_PACKAGES, PROTO_LOADER_OPTIONS, PROTO_ROOT } from '@latchkey/contracts';
import { bootstrapService } from '@latchkey/service-kit';
import { authConfigShape } from './config';
import { AuthModule } from './auth.module';

const grpc = GRPC_PACKAGES.auth;

void bootstrapService({
  name: 'auth',
  configShape: authConfigShape,
  grpc: {
    package: grpc.package,
    protoPath: grpc.protoPath,
    protoRoot: PROTO_ROOT,
    services: [`${grpc.package}.${grpc.service}`],
    loaderOptions: PROTO_LOADER_OPTIONS,
  },
  module: (config) => AuthModule.forRoot(config),
});
