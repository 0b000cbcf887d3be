/** gRPC: the tenant's CA certificate and CRL (public), its device policy (tenant admin). */
import { Controller, UseGuards } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { registrationV1 } from '@latchkey/contracts';
import { AccessTokenGuard, parseRequest, RequireRoles } from '@latchkey/service-kit';
import { z } from 'zod';
import { tenantAdmin } from '../access/tenant-admin';
import { CertificateRevocationList } from './certificate-revocation.service';
import { DevicePolicies } from './device-policy.service';
import { TenantDirectory } from './tenant-directory.service';

const SERVICE = 'RegistrationService';
export const tenantIdRequest = z.object({ tenantId: z.string().uuid('must be a UUID') });

@Controller()
export class TenantsGrpcController {
  constructor(
    private readonly tenants: TenantDirectory,
    private readonly crl: CertificateRevocationList,
    private readonly policies: DevicePolicies,
  ) {}

  @GrpcMethod(SERVICE, 'GetTenantCaCertificate')
  async getTenantCaCertificate(
    req: registrationV1.GetTenantCaCertificateRequest,
  ): Promise<registrationV1.GetTenantCaCertificateResponse> {
    const { tenantId } = parseRequest(tenantIdRequest, req);
    const ca = await this.tenants.authority(tenantId);
    return { certificatePem: ca.certificatePem, parentChainPem: [...ca.parentChainPem] };
  }

  @GrpcMethod(SERVICE, 'GetCertificateRevocationList')
  async getCertificateRevocationList(
    req: registrationV1.GetCertificateRevocationListRequest,
  ): Promise<registrationV1.GetCertificateRevocationListResponse> {
    const { tenantId } = parseRequest(tenantIdRequest, req);
    return { crlDer: await this.crl.der(tenantId) };
  }

  @GrpcMethod(SERVICE, 'GetDevicePolicy')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async getDevicePolicy(
    req: registrationV1.GetDevicePolicyRequest,
    metadata: Metadata,
  ): Promise<registrationV1.GetDevicePolicyResponse> {
    const { tenantId } = parseRequest(tenantIdRequest, req);
    tenantAdmin(metadata, tenantId);
    return { policy: await this.policies.get(tenantId) };
  }

  @GrpcMethod(SERVICE, 'UpdateDevicePolicy')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async updateDevicePolicy(
    req: registrationV1.UpdateDevicePolicyRequest,
    metadata: Metadata,
  ): Promise<registrationV1.UpdateDevicePolicyResponse> {
    const { tenantId } = parseRequest(tenantIdRequest, req.policy ?? {}, 'INVALID_DEVICE_POLICY');
    tenantAdmin(metadata, tenantId);
    return { policy: await this.policies.update(req.policy) };
  }
}
