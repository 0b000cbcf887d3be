/** gRPC face of provisioning and the credential lifecycle (latchkey.provisioning.v1). */
import { Controller, Inject, UseGuards } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { provisioningV1 } from '@latchkey/contracts';
import {
  AccessTokenGuard,
  InternalCallers,
  InternalCallGuard,
  principalOf,
} from '@latchkey/service-kit';
import { toProtoCredential } from './credential.mapping';
import { CredentialsService } from './credentials.service';
import { ProvisioningService } from './provisioning.service';

const SERVICE = 'ProvisioningService';

@Controller()
@UseGuards(AccessTokenGuard)
export class ProvisioningGrpcController {
  constructor(
    @Inject(ProvisioningService) private readonly provisioning: ProvisioningService,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
  ) {}

  @GrpcMethod(SERVICE, 'BeginProvisioning')
  beginProvisioning(req: provisioningV1.BeginProvisioningRequest, md: Metadata) {
    return this.provisioning.begin(principalOf(md), req);
  }

  @GrpcMethod(SERVICE, 'CompleteProvisioning')
  async completeProvisioning(
    req: provisioningV1.CompleteProvisioningRequest,
    md: Metadata,
  ): Promise<provisioningV1.CompleteProvisioningResponse> {
    const out = await this.provisioning.complete(principalOf(md), req);
    return {
      credential: toProtoCredential(out.credential),
      replacedCredentialIds: out.replacedCredentialIds,
    };
  }

  @GrpcMethod(SERVICE, 'ListCredentials')
  async listCredentials(
    req: provisioningV1.ListCredentialsRequest,
    md: Metadata,
  ): Promise<provisioningV1.ListCredentialsResponse> {
    const page = await this.credentials.list(principalOf(md), req);
    return {
      credentials: page.credentials.map(toProtoCredential),
      nextPageToken: page.nextPageToken,
    };
  }

  @GrpcMethod(SERVICE, 'RevokeCredential')
  async revokeCredential(
    req: provisioningV1.RevokeCredentialRequest,
    md: Metadata,
  ): Promise<provisioningV1.RevokeCredentialResponse> {
    return { credential: toProtoCredential(await this.credentials.revoke(principalOf(md), req)) };
  }
}

/** Calls authenticated otherwise than by a user's access token. */
@Controller()
export class DeviceAndInternalGrpcController {
  constructor(@Inject(CredentialsService) private readonly credentials: CredentialsService) {}

  /** Internal, for auth's key sign-in; not exposed over HTTP. */
  @GrpcMethod(SERVICE, 'GetCredential')
  @UseGuards(InternalCallGuard)
  @InternalCallers('auth')
  async getCredential(
    req: provisioningV1.GetCredentialRequest,
  ): Promise<provisioningV1.GetCredentialResponse> {
    return { credential: toProtoCredential(await this.credentials.get(req)) };
  }

  /** Authorized by the device assertion. */
  @GrpcMethod(SERVICE, 'DeleteCredential')
  async deleteCredential(
    req: provisioningV1.DeleteCredentialRequest,
  ): Promise<provisioningV1.DeleteCredentialResponse> {
    await this.credentials.deleteByDevice(req);
    return {};
  }
}
