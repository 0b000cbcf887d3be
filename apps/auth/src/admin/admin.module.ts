import { Module } from '@nestjs/common';
import { Directory } from '../directory/directory.service';
import { SigningKeysModule } from '../signing-keys/signing-keys.module';
import { AdminGrpcController } from './admin.grpc.controller';
import { AdminHttpController } from './admin.http.controller';

@Module({
  imports: [SigningKeysModule],
  controllers: [AdminGrpcController, AdminHttpController],
  providers: [Directory],
})
export class AdminModule {}
