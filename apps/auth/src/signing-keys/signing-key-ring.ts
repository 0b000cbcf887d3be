/**
 * The token-signing key ring (ES256): keys generated here, private halves
 * encrypted with the KEK, rotated on a schedule. Three published states:
 * `next` is in the JWKS before it signs (so relying parties' caches know it
 * ahead of time), `current` signs, `previous` stays published until every token
 * it signed has expired. Replicas re-read the ring periodically; a Postgres
 * advisory lock makes one of them do each rotation.
 */
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  createEvent,
  OutboxRelay,
  outboxRecord,
  PLATFORM_TENANT_ID,
  SigningKeyRotated,
} from '@latchkey/events';
import { KeyEncryption } from '@latchkey/crypto';
import { DomainError, SERVICE_LOGGER } from '@latchkey/service-kit';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type KeyLike,
} from 'jose';
import type { Logger } from 'pino';
import { AUTH_CONFIG, type AuthConfig } from '../config';
import { PrismaClient, type Prisma } from '../generated/prisma/client';

type Tx = Prisma.TransactionClient;
export type RotationTrigger = 'initial' | 'schedule' | 'operator';

interface ActiveKey {
  kid: string;
  privateKey: KeyLike;
  activatedAt: Date;
}

export interface Jwks {
  keys: JWK[];
}

const LOCK = `SELECT pg_advisory_xact_lock(hashtext('latchkey.auth.signing_keys'))`;

@Injectable()
export class SigningKeyRing implements OnModuleInit, OnModuleDestroy {
  private current?: ActiveKey;
  private published: Jwks = { keys: [] };
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(KeyEncryption) private readonly kek: KeyEncryption,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: Error) =>
        this.logger.warn({ err: err.message }, 'signing key ring refresh failed; will retry'),
      );
    }, this.config.SIGNING_KEY_CHECK_SECONDS * 1000);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Public keys to publish (next, current, previous until retired). */
  jwks(): Jwks {
    return this.published;
  }

  /** The key that signs now. */
  signingKey(): ActiveKey {
    if (!this.current)
      throw DomainError.unavailable('SIGNING_KEY_UNAVAILABLE', 'no token-signing key is loaded');
    return this.current;
  }

  /** Creates the first keys when there are none, rotates when due, then reloads. */
  async refresh(now = new Date()): Promise<void> {
    const rotationMs = this.config.SIGNING_KEY_ROTATION_SECONDS * 1000;
    const current = await this.db.signingKey.findFirst({ where: { status: 'current' } });
    if (!current) await this.rotate('initial');
    else if (current.activatedAt && current.activatedAt.getTime() + rotationMs <= now.getTime())
      await this.rotate('schedule');
    await this.load(now);
  }

  /**
   * Rotates now: next → current, current → previous (published for the
   * overlap: the access-token lifetime plus five minutes of clock skew), a new
   * next. Idempotent under concurrency: the lock serializes replicas, and a
   * scheduled rotation re-checks that it is still due.
   */
  async rotate(
    trigger: RotationTrigger,
    actorId?: string,
  ): Promise<{ kid: string; nextKid: string; previousKid?: string }> {
    const overlapMs = (this.config.ACCESS_TOKEN_TTL_SECONDS + 300) * 1000;
    const result = await this.db.$transaction(
      async (tx) => {
        await tx.$executeRawUnsafe(LOCK);
        const now = new Date();
        const current = await tx.signingKey.findFirst({ where: { status: 'current' } });
        if (trigger === 'initial' && current) return undefined;
        if (
          trigger === 'schedule' &&
          current?.activatedAt &&
          current.activatedAt.getTime() + this.config.SIGNING_KEY_ROTATION_SECONDS * 1000 >
            now.getTime()
        )
          return undefined;
        await tx.signingKey.updateMany({
          where: { status: 'previous', retireAt: { lte: now } },
          data: { status: 'retired' },
        });
        let previousRetireAt: Date | undefined;
        if (current) {
          previousRetireAt = new Date(now.getTime() + overlapMs);
          await tx.signingKey.update({
            where: { kid: current.kid },
            data: { status: 'previous', retireAt: previousRetireAt },
          });
        }
        const next =
          (await tx.signingKey.findFirst({ where: { status: 'next' } })) ??
          (await this.createKey(tx, 'next'));
        await tx.signingKey.update({
          where: { kid: next.kid },
          data: { status: 'current', activatedAt: now },
        });
        const upcoming = await this.createKey(tx, 'next');
        const event = createEvent(SigningKeyRotated, PLATFORM_TENANT_ID, {
          tenantId: PLATFORM_TENANT_ID,
          kid: next.kid,
          nextKid: upcoming.kid,
          trigger,
          ...(current ? { previousKid: current.kid } : {}),
          ...(previousRetireAt ? { previousRetireAt: previousRetireAt.toISOString() } : {}),
          ...(actorId ? { actorId } : {}),
        });
        await tx.outboxEvent.create({ data: outboxRecord(event) });
        return { kid: next.kid, nextKid: upcoming.kid, previousKid: current?.kid };
      },
      { maxWait: 10_000, timeout: 30_000 },
    );
    if (result) {
      this.relay.notify();
      this.logger.info({ kid: result.kid, trigger }, 'token-signing key rotated');
    }
    await this.load(new Date());
    const current = this.signingKey();
    return result ?? { kid: current.kid, nextKid: '' };
  }

  private async createKey(tx: Tx, status: 'next') {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const privateJwk = await exportJWK(privateKey);
    return tx.signingKey.create({
      data: {
        kid,
        status,
        publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' } as Prisma.InputJsonObject,
        privateKeyEncrypted: this.kek.encrypt(
          JSON.stringify(privateJwk),
          `auth.signing-key:${kid}`,
        ),
      },
    });
  }

  private async load(now: Date): Promise<void> {
    const keys = await this.db.signingKey.findMany({
      where: {
        OR: [
          { status: { in: ['next', 'current'] } },
          { status: 'previous', retireAt: { gt: now } },
        ],
      },
      orderBy: { createdAt: 'desc' },
    });
    const current = keys.find((k) => k.status === 'current');
    if (current && current.kid !== this.current?.kid) {
      const jwk = JSON.parse(
        this.kek.decrypt(current.privateKeyEncrypted, `auth.signing-key:${current.kid}`).toString(),
      ) as JWK;
      this.current = {
        kid: current.kid,
        privateKey: (await importJWK(jwk, 'ES256')) as KeyLike,
        activatedAt: current.activatedAt ?? current.createdAt,
      };
    }
    this.published = { keys: keys.map((k) => k.publicJwk as unknown as JWK) };
  }
}
