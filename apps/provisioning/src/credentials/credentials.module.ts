/** Provisioning of user keys and their lifecycle, including reactions to device and user events. */
import { Module } from '@nestjs/common';
import { type BatchEventConsumerOptions, Topics } from '@latchkey/events';
import {
  InternalCallSigner,
  NonceStore,
  REDIS,
  SERVICE_CONFIG,
  type RedisClient,
} from '@latchkey/service-kit';
import type { ProvisioningConfig } from '../config';
import { DEVICE_ASSERTION_VERIFIER } from '../devices/device-assertion';
import { RegistrationDeviceAssertions } from '../devices/registration-device-assertions';
import { RegistrationClient } from '../devices/registration.client';
import { PoliciesModule } from '../policies/policies.module';
import { CredentialReactions } from './credential-reactions.service';
import {
  DeviceAndInternalGrpcController,
  ProvisioningGrpcController,
} from './credentials.grpc.controller';
import {
  CredentialsHttpController,
  DeviceCredentialsHttpController,
} from './credentials.http.controller';
import { CredentialsService } from './credentials.service';
import { KEY_ATTESTATION_VERIFIER } from './key-attestation';
import { TpmKeyAttestationVerifier } from './tpm-key-attestation';
import { ProvisioningService } from './provisioning.service';

export const CREDENTIAL_EVENTS_CONSUMER = Symbol('CREDENTIAL_EVENTS_CONSUMER');

@Module({
  imports: [PoliciesModule],
  controllers: [
    ProvisioningGrpcController,
    DeviceAndInternalGrpcController,
    CredentialsHttpController,
    DeviceCredentialsHttpController,
  ],
  providers: [
    ProvisioningService,
    CredentialsService,
    CredentialReactions,
    {
      provide: NonceStore,
      useFactory: (redis: RedisClient, config: ProvisioningConfig) =>
        new NonceStore(redis, config.CHALLENGE_TTL_SECONDS),
      inject: [REDIS, SERVICE_CONFIG],
    },
    {
      provide: RegistrationClient,
      useFactory: (config: ProvisioningConfig, signer: InternalCallSigner) =>
        new RegistrationClient(
          config.REGISTRATION_GRPC_ADDRESS,
          config.REGISTRATION_TIMEOUT_MS,
          signer,
        ),
      inject: [SERVICE_CONFIG, InternalCallSigner],
    },
    {
      provide: DEVICE_ASSERTION_VERIFIER,
      useFactory: (registration: RegistrationClient, redis: RedisClient) =>
        new RegistrationDeviceAssertions(registration, redis),
      inject: [RegistrationClient, REDIS],
    },
    { provide: KEY_ATTESTATION_VERIFIER, useClass: TpmKeyAttestationVerifier },
    {
      provide: CREDENTIAL_EVENTS_CONSUMER,
      useFactory: (
        reactions: CredentialReactions,
        config: ProvisioningConfig,
      ): BatchEventConsumerOptions => ({
        groupId: config.PROVISIONING_CONSUMER_GROUP,
        topics: [Topics.device, Topics.auth],
        // Consumed events that cannot be decoded go there, with their reason.
        deadLetterTopic: Topics.provisioningDlq,
        handle: (events) => reactions.handle(events),
      }),
      inject: [CredentialReactions, SERVICE_CONFIG],
    },
  ],
  exports: [CREDENTIAL_EVENTS_CONSUMER],
})
export class CredentialsModule {}
