/**
 * Registration's copy of the tenants (from auth's tenant events) and each
 * tenant's device CA: created once, the private key sealed with the
 * key-encryption key, the loaded CA cached in memory (it never changes).
 */
import { Inject, Injectable } from '@nestjs/common';
import { createDeviceCa, DeviceCertificateAuthority, KeyEncryption } from '@latchkey/crypto';
import { DomainError, SERVICE_LOGGER } from '@latchkey/service-kit';
import type { Logger } from 'pino';
import { REGISTRATION_CONFIG, type RegistrationConfig } from '../config';
import { PrismaClient, type Tenant } from '../generated/prisma/client';

export interface TenantAnnouncement {
  tenantId: string;
  name: string;
  displayName: string;
}

const caKeyContext = (tenantId: string) => `registration.tenant-ca:${tenantId}`;
const CACHE_LIMIT = 10_000;
/**
 * How long registration reuses a tenant row it read. Staleness cannot admit a
 * device under an old policy: the registration's statement stores it only if
 * the policy it was checked against is still the tenant's (RegistrationWriter).
 */
const TENANT_TTL_MS = 30_000;

@Injectable()
export class TenantDirectory {
  private readonly cas = new Map<string, Promise<DeviceCertificateAuthority>>();
  private readonly recent = new Map<string, { tenant: Tenant; until: number }>();

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(KeyEncryption) private readonly kek: KeyEncryption,
    @Inject(REGISTRATION_CONFIG) private readonly config: RegistrationConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  /** Handles a tenant.created event: idempotent (a replay changes nothing). */
  async tenantCreated(t: TenantAnnouncement): Promise<void> {
    await this.db.tenant.createMany({
      data: [{ id: t.tenantId, name: t.name, displayName: t.displayName }],
      skipDuplicates: true,
    });
    await this.ensureCa(t.tenantId);
  }

  private async ensureCa(tenantId: string): Promise<void> {
    if (await this.db.tenantCa.findUnique({ where: { tenantId }, select: { tenantId: true } }))
      return;
    const root =
      this.config.DEVICE_CA_PLATFORM_ROOT_CERT && this.config.DEVICE_CA_PLATFORM_ROOT_KEY
        ? {
            certificatePem: this.config.DEVICE_CA_PLATFORM_ROOT_CERT,
            privateKeyPem: this.config.DEVICE_CA_PLATFORM_ROOT_KEY,
          }
        : undefined;
    const material = await createDeviceCa({ tenantId, ...(root ? { platformRoot: root } : {}) });
    const { count } = await this.db.tenantCa.createMany({
      data: [
        {
          tenantId,
          certificatePem: material.certificatePem,
          parentChainPem: material.parentChainPem,
          encryptedPrivateKey: this.kek.encrypt(material.privateKeyPkcs8, caKeyContext(tenantId)),
        },
      ],
      skipDuplicates: true, // another instance won the race: its CA stands
    });
    material.privateKeyPkcs8.fill(0);
    if (count) this.logger.info({ tenantId }, 'tenant device CA created');
  }

  /** The tenant, or FAILED_PRECONDITION when registration does not know it (yet). */
  async tenant(tenantId: string): Promise<Tenant> {
    const tenant = await this.db.tenant.findUnique({ where: { id: tenantId } });
    if (!tenant) throw tenantNotReady();
    return tenant;
  }

  async findTenant(tenantId: string): Promise<Tenant | null> {
    return this.db.tenant.findUnique({ where: { id: tenantId } });
  }

  /**
   * The tenant as read at most TENANT_TTL_MS ago (an unknown tenant is looked up
   * every time): for registrations, which re-check the policy when they are stored.
   */
  async recentTenant(tenantId: string): Promise<Tenant | null> {
    const hit = this.recent.get(tenantId);
    if (hit && hit.until > Date.now()) return hit.tenant;
    const tenant = await this.findTenant(tenantId);
    if (this.recent.size >= CACHE_LIMIT) this.recent.delete(this.recent.keys().next().value!);
    if (tenant) this.recent.set(tenantId, { tenant, until: Date.now() + TENANT_TTL_MS });
    else this.recent.delete(tenantId);
    return tenant;
  }

  /** Drops the cached tenant row (its policy changed). */
  forgetTenant(tenantId: string): void {
    this.recent.delete(tenantId);
  }

  /** The tenant's loaded CA (cached). FAILED_PRECONDITION when it does not exist yet. */
  async authority(tenantId: string): Promise<DeviceCertificateAuthority> {
    let ca = this.cas.get(tenantId);
    if (!ca) {
      ca = this.loadAuthority(tenantId);
      if (this.cas.size >= CACHE_LIMIT) this.cas.delete(this.cas.keys().next().value!);
      this.cas.set(tenantId, ca);
      ca.catch(() => this.cas.delete(tenantId));
    }
    return ca;
  }

  private async loadAuthority(tenantId: string): Promise<DeviceCertificateAuthority> {
    const row = await this.db.tenantCa.findUnique({ where: { tenantId } });
    if (!row) throw tenantNotReady();
    const privateKeyPkcs8 = this.kek.decrypt(row.encryptedPrivateKey, caKeyContext(tenantId));
    try {
      return await DeviceCertificateAuthority.load({
        certificatePem: row.certificatePem,
        parentChainPem: row.parentChainPem,
        privateKeyPkcs8,
      });
    } finally {
      privateKeyPkcs8.fill(0);
    }
  }
}

export function tenantNotReady(): DomainError {
  return new DomainError(
    'FAILED_PRECONDITION',
    'TENANT_NOT_READY',
    'the tenant is unknown to device registration, or its device CA is not ready yet',
  );
}
