/** Device registration: validates a request, stores the device and its event in one transaction. */
import { createPublicKey } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { createEvent, DeviceRegistered, OutboxRelay, outboxRecord } from '@latchkey/events';
import { DomainError, parseRequest } from '@latchkey/service-kit';
import { z } from 'zod';
import { PrismaClient, type Device } from '../generated/prisma/client';

const PEM_CSR =
  /^-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----\s*$/;

function isPublicKey(text: string): boolean {
  try {
    const trimmed = text.trim();
    const key = trimmed.startsWith('{')
      ? createPublicKey({
          key: JSON.parse(trimmed) as import('node:crypto').JsonWebKey,
          format: 'jwk',
        })
      : createPublicKey(trimmed);
    return key.type === 'public';
  } catch {
    return false;
  }
}

export const registerDeviceCommand = z.object({
  tenantId: z.string().uuid('must be a UUID'),
  // Enrollment authorization; verified against join tokens from issue #4 on.
  joinToken: z.string().min(1, 'is required').max(512),
  csrPem: z
    .string()
    .max(16384)
    .refine((s) => PEM_CSR.test(s.trim() + '\n'), 'must be a PEM "CERTIFICATE REQUEST"'),
  transportPublicKey: z
    .string()
    .max(16384)
    .refine(isPublicKey, 'must be a public key as SPKI PEM or JWK'),
  displayName: z.string().trim().min(1, 'is required').max(256),
  osType: z.string().trim().min(1, 'is required').max(64),
  osVersion: z.string().trim().max(64),
  joinType: z.enum(['registered', 'joined']),
});

export type RegisterDeviceCommand = z.infer<typeof registerDeviceCommand>;

@Injectable()
export class DeviceRegistry {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
  ) {}

  async register(input: unknown): Promise<Device> {
    const cmd = parseRequest(registerDeviceCommand, input, 'INVALID_DEVICE_REGISTRATION');
    const device = await this.db.$transaction(async (tx) => {
      const created = await tx.device.create({
        data: {
          tenantId: cmd.tenantId,
          displayName: cmd.displayName,
          osType: cmd.osType,
          osVersion: cmd.osVersion,
          joinType: cmd.joinType,
          csrPem: cmd.csrPem.trim(),
          transportPublicKey: cmd.transportPublicKey.trim(),
        },
      });
      const event = createEvent(DeviceRegistered, cmd.tenantId, {
        tenantId: cmd.tenantId,
        deviceId: created.id,
        displayName: created.displayName,
        osType: created.osType,
        osVersion: created.osVersion,
        joinType: cmd.joinType,
        attestationLevel: 'none',
      });
      await tx.outboxEvent.create({ data: outboxRecord(event) });
      return created;
    });
    this.relay.notify();
    return device;
  }

  async get(tenantId: string, deviceId: string): Promise<Device> {
    const ids = parseRequest(
      z.object({
        tenantId: z.string().uuid('must be a UUID'),
        deviceId: z.string().uuid('must be a UUID'),
      }),
      { tenantId, deviceId },
    );
    const device = await this.db.device.findFirst({
      where: { id: ids.deviceId, tenantId: ids.tenantId },
    });
    if (!device) throw DomainError.notFound('DEVICE_NOT_FOUND', 'no such device in this tenant');
    return device;
  }
}
