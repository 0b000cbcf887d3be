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
    // AuthService (sign-in, nonces) and AdminService share the package latchkey.auth.v1.
    protoPath: [grpc.protoPath, 'latchkey/auth/v1/admin.proto'],
    protoRoot: PROTO_ROOT,
    services: [`${grpc.package}.${grpc.service}`, `${grpc.package}.AdminService`],
    loaderOptions: PROTO_LOADER_OPTIONS,
  },
  module: (config) => AuthModule.forRoot(config),
});
