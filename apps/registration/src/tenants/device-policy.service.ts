/** A tenant's device policy: TPM requirement, certificate lifetime, TPM trust anchors. */
import { Inject, Injectable } from '@nestjs/common';
import { x509 } from '@latchkey/crypto';
import { parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';
import { PrismaClient, type Tenant } from '../generated/prisma/client';
import { TenantDirectory } from './tenant-directory.service';

export interface DevicePolicyView {
  tenantId: string;
  requireTpm: boolean;
  certificateValidityDays: number;
  tpmRootCertificatesPem: string[];
}

const caCertificate = z
  .string()
  .max(16384)
  .refine((pem) => {
    try {
      const cert = new x509.X509Certificate(pem);
      return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
    } catch {
      return false;
    }
  }, 'must be a PEM CA certificate');

export const updateDevicePolicyCommand = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  requireTpm: z.boolean().default(false),
  certificateValidityDays: z.number().int().min(1).max(1825).default(365),
  tpmRootCertificatesPem: z.array(caCertificate).max(32).default([]),
});

export function policyOf(t: Tenant): DevicePolicyView {
  return {
    tenantId: t.id,
    requireTpm: t.requireTpm,
    certificateValidityDays: t.certificateValidityDays,
    tpmRootCertificatesPem: t.tpmRootsPem,
  };
}

@Injectable()
export class DevicePolicies {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    private readonly tenants: TenantDirectory,
  ) {}

  async get(tenantId: string): Promise<DevicePolicyView> {
    return policyOf(await this.tenants.tenant(tenantId));
  }

  async update(input: unknown): Promise<DevicePolicyView> {
    const cmd = parseRequest(updateDevicePolicyCommand, input, 'INVALID_DEVICE_POLICY');
    await this.tenants.tenant(cmd.tenantId);
    const updated = await this.db.tenant.update({
      where: { id: cmd.tenantId },
      data: {
        requireTpm: cmd.requireTpm,
        certificateValidityDays: cmd.certificateValidityDays,
        tpmRootsPem: cmd.tpmRootCertificatesPem.map((p) => p.trim() + '\n'),
      },
    });
    this.tenants.forgetTenant(cmd.tenantId);
    return policyOf(updated);
  }
}
