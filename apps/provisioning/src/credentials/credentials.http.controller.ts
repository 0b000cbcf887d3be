/** HTTPS JSON face of provisioning and the credential lifecycle; same semantics as gRPC. */
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { provisioningV1 } from '@latchkey/contracts';
import { AccessTokenGuard, principalOf } from '@latchkey/service-kit';
import { toProtoCredential } from './credential.mapping';
import { CredentialsService } from './credentials.service';
import { ProvisioningService } from './provisioning.service';

type Json = Record<string, unknown>;

/** JSON carries bytes as base64 or base64url text. */
function bytesOf(v: unknown): unknown {
  return typeof v === 'string'
    ? Buffer.from(v, v.includes('+') || v.includes('/') ? 'base64' : 'base64url')
    : v;
}

function attestationOf(v: unknown): unknown {
  if (!v || typeof v !== 'object') return v;
  const a = v as Json;
  return {
    ...a,
    x5c: Array.isArray(a.x5c) ? a.x5c.map(bytesOf) : a.x5c,
    sig: bytesOf(a.sig),
    certInfo: bytesOf(a.certInfo),
    pubArea: bytesOf(a.pubArea),
  };
}

/** Accepts the proto enum name or its short lower-case form (`active`, `tpm`). */
function enumOf<E extends Record<string, string>>(e: E, prefix: string, v: unknown): unknown {
  if (typeof v !== 'string' || !v) return undefined;
  const name = v.startsWith(prefix) ? v : `${prefix}${v.toUpperCase()}`;
  return name in e ? name : v;
}

@Controller('v1')
@UseGuards(AccessTokenGuard)
export class CredentialsHttpController {
  constructor(
    @Inject(ProvisioningService) private readonly provisioning: ProvisioningService,
    @Inject(CredentialsService) private readonly credentials: CredentialsService,
  ) {}

  /** BeginProvisioning. */
  @Post('provisioning/challenges')
  @HttpCode(201)
  begin(@Req() req: object, @Body() body: Json | undefined) {
    return this.provisioning.begin(principalOf(req), body ?? {});
  }

  /** CompleteProvisioning; `publicKeyJwk` may be a JSON object or its text. */
  @Post('credentials')
  @HttpCode(201)
  async complete(@Req() req: object, @Body() body: Json | undefined) {
    const b = body ?? {};
    const out = await this.provisioning.complete(principalOf(req), {
      ...b,
      publicKeyJwk:
        b.publicKeyJwk && typeof b.publicKeyJwk === 'object'
          ? JSON.stringify(b.publicKeyJwk)
          : b.publicKeyJwk,
      keyAttestation: attestationOf(b.keyAttestation),
    });
    return {
      credential: toProtoCredential(out.credential),
      replacedCredentialIds: out.replacedCredentialIds,
    };
  }

  @Get('tenants/:tenantId/credentials')
  async list(@Req() req: object, @Param('tenantId') tenantId: string, @Query() q: Json) {
    const page = await this.credentials.list(principalOf(req), {
      ...q,
      tenantId,
      status: enumOf(provisioningV1.CredentialStatus, 'CREDENTIAL_STATUS_', q.status),
      attestationLevel: enumOf(
        provisioningV1.AttestationLevel,
        'ATTESTATION_LEVEL_',
        q.attestationLevel,
      ),
    });
    return {
      credentials: page.credentials.map(toProtoCredential),
      nextPageToken: page.nextPageToken,
    };
  }

  @Post('tenants/:tenantId/credentials/:credentialId/revoke')
  @HttpCode(200)
  async revoke(
    @Req() req: object,
    @Param('tenantId') tenantId: string,
    @Param('credentialId') credentialId: string,
    @Body() body: Json | undefined,
  ) {
    const c = await this.credentials.revoke(principalOf(req), {
      ...(body ?? {}),
      tenantId,
      credentialId,
    });
    return { credential: toProtoCredential(c) };
  }
}

/** The device deletes its own key; authorized by the device assertion, not a user token. */
@Controller('v1/devices/:deviceId/credentials')
export class DeviceCredentialsHttpController {
  constructor(@Inject(CredentialsService) private readonly credentials: CredentialsService) {}

  @Delete(':credentialId')
  @HttpCode(204)
  async delete(
    @Param('deviceId') deviceId: string,
    @Param('credentialId') credentialId: string,
    @Body() body: Json | undefined,
  ): Promise<void> {
    await this.credentials.deleteByDevice({ ...(body ?? {}), deviceId, credentialId });
  }
}
