import { type DynamicModule, Module } from '@nestjs/common';
import { KeyEncryption } from '@latchkey/crypto';
import { EventsModule, Topics } from '@latchkey/events';
import {
  InternalCallSigner,
  internalCallSignerProvider,
  PG_POOL,
  pgPoolProvider,
  prismaProvider,
  REDIS,
  redisProvider,
} from '@latchkey/service-kit';
import { AdminModule } from './admin/admin.module';
import { AUTH_CONFIG, type AuthConfig } from './config';
import { PrismaClient } from './generated/prisma/client';
import { KeySignInModule } from './key-sign-in/key-sign-in.module';
import { NoncesModule } from './nonces/nonces.module';
import { PasswordHasher } from './passwords/password-hasher';
import { SignInModule } from './sign-in/sign-in.module';
import { SigningKeysModule } from './signing-keys/signing-keys.module';

@Module({})
export class AuthModule {
  static forRoot(config: AuthConfig): DynamicModule {
    return {
      module: AuthModule,
      imports: [
        {
          module: class InfrastructureModule {},
          global: true,
          providers: [
            prismaProvider(PrismaClient),
            pgPoolProvider(PrismaClient),
            redisProvider,
            internalCallSignerProvider,
            { provide: AUTH_CONFIG, useValue: config },
            { provide: KeyEncryption, useValue: new KeyEncryption(config.KEY_ENCRYPTION_KEYS) },
            {
              provide: PasswordHasher,
              useValue: new PasswordHasher({ logN: config.PASSWORD_SCRYPT_LOG_N, r: 8, p: 1 }),
            },
          ],
          exports: [
            PrismaClient,
            PG_POOL,
            REDIS,
            AUTH_CONFIG,
            KeyEncryption,
            PasswordHasher,
            InternalCallSigner,
          ],
        },
        EventsModule.forRoot({
          brokers: config.KAFKA_BROKERS,
          clientId: config.KAFKA_CLIENT_ID ?? 'latchkey-auth',
          topics: [Topics.auth, Topics.device, Topics.credential],
          outboxDatabase: PrismaClient,
        }),
        SigningKeysModule,
        NoncesModule,
        SignInModule,
        KeySignInModule,
        AdminModule,
      ],
    };
  }
}
