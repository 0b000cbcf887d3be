/** The per-tenant CRL: rebuilt when a revocation bumps the CA's CRL number, else served from memory. */
import { Inject, Injectable } from '@nestjs/common';
import type { RevokedCertificate } from '@latchkey/crypto';
import { PrismaClient } from '../generated/prisma/client';
import { TenantDirectory } from './tenant-directory.service';

const REFRESH_MS = 60 * 60_000;
const VALIDITY_MS = 24 * 60 * 60_000;

@Injectable()
export class CertificateRevocationList {
  private readonly cache = new Map<string, { crlNumber: bigint; builtAt: number; der: Buffer }>();

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    private readonly tenants: TenantDirectory,
  ) {}

  async der(tenantId: string, now = new Date()): Promise<Buffer> {
    const ca = await this.tenants.authority(tenantId);
    const { crlNumber } = await this.db.tenantCa.findUniqueOrThrow({
      where: { tenantId },
      select: { crlNumber: true },
    });
    const cached = this.cache.get(tenantId);
    if (cached && cached.crlNumber === crlNumber && now.getTime() - cached.builtAt < REFRESH_MS)
      return cached.der;
    const revoked = await this.db.deviceCertificate.findMany({
      where: { tenantId, revokedAt: { not: null }, notAfter: { gt: now } },
      select: { serial: true, revokedAt: true, revocationReason: true },
      orderBy: { revokedAt: 'asc' },
    });
    const der = await ca.crl({
      crlNumber,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + VALIDITY_MS),
      revoked: revoked.map((r) => ({
        serialHex: r.serial,
        revokedAt: r.revokedAt!,
        reason: (r.revocationReason ?? 'unspecified') as RevokedCertificate['reason'],
      })),
    });
    this.cache.set(tenantId, { crlNumber, builtAt: now.getTime(), der });
    return der;
  }
}
