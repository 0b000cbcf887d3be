/** HTTP: GET the tenant's CA certificate (PEM chain) and CRL (DER); the device policy (tenant admin). */
import { Body, Controller, Get, Header, Param, Put, Req, Res, UseGuards } from '@nestjs/common';
import {
  AccessTokenGuard,
  jsonObjectBody,
  parseRequest,
  RequireRoles,
} from '@latchkey/service-kit';
import type { Request, Response } from 'express';
import { tenantAdmin } from '../access/tenant-admin';
import { CertificateRevocationList } from './certificate-revocation.service';
import { DevicePolicies } from './device-policy.service';
import { TenantDirectory } from './tenant-directory.service';
import { tenantIdRequest } from './tenants.grpc.controller';

@Controller('v1/tenants/:tenantId')
export class TenantsHttpController {
  constructor(
    private readonly tenants: TenantDirectory,
    private readonly crl: CertificateRevocationList,
    private readonly policies: DevicePolicies,
  ) {}

  @Get('ca-certificate')
  @Header('content-type', 'application/pem-certificate-chain')
  async caCertificate(@Param('tenantId') tenantId: string): Promise<string> {
    parseRequest(tenantIdRequest, { tenantId });
    return (await this.tenants.authority(tenantId)).chainPem.join('');
  }

  @Get('crl')
  async revocationList(@Param('tenantId') tenantId: string, @Res() res: Response): Promise<void> {
    parseRequest(tenantIdRequest, { tenantId });
    const der = await this.crl.der(tenantId);
    res.status(200).type('application/pkix-crl').setHeader('cache-control', 'max-age=60');
    res.end(der);
  }

  @Get('device-policy')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async getPolicy(@Param('tenantId') tenantId: string, @Req() req: Request) {
    parseRequest(tenantIdRequest, { tenantId });
    tenantAdmin(req, tenantId);
    return { policy: await this.policies.get(tenantId) };
  }

  @Put('device-policy')
  @UseGuards(AccessTokenGuard)
  @RequireRoles('admin')
  async putPolicy(
    @Param('tenantId') tenantId: string,
    @Body() body: Record<string, unknown>,
    @Req() req: Request,
  ) {
    parseRequest(tenantIdRequest, { tenantId });
    tenantAdmin(req, tenantId);
    return { policy: await this.policies.update({ ...jsonObjectBody(req, body), tenantId }) };
  }
}
