/**
 * The `jti`s of device assertions registration accepted, in its own database
 * (registration has no Redis): `remember` records one and tells whether it was
 * fresh, atomically, so a captured assertion is accepted once across every
 * instance. A row lives until its assertion could no longer pass the `iat`
 * check (the verifier's `expiresAt`); expired rows are pruned now and then.
 */
import { Inject, Injectable } from '@nestjs/common';
import { PrismaClient } from '../generated/prisma/client';

/** At most one prune per instance in this interval, of at most PRUNE_BATCH rows. */
const PRUNE_EVERY_MS = 60_000;
const PRUNE_BATCH = 5_000;

@Injectable()
export class DeviceAssertionJtis {
  private nextPrune = 0;

  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  /** Records `key` until `expiresAt`; false when it is recorded already and not expired. */
  async remember(key: string, expiresAt: Date): Promise<boolean> {
    // Inserted, or an expired row taken over: one row. A live row: none.
    const rows = await this.db.$executeRaw`
      INSERT INTO device_assertion_jtis (key, expires_at) VALUES (${key}, ${expiresAt})
      ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
      WHERE device_assertion_jtis.expires_at <= now()`;
    this.prune();
    return rows === 1;
  }

  private prune(): void {
    const now = Date.now();
    if (now < this.nextPrune) return;
    this.nextPrune = now + PRUNE_EVERY_MS;
    void this.db.$executeRaw`
      DELETE FROM device_assertion_jtis WHERE key IN (
        SELECT key FROM device_assertion_jtis WHERE expires_at <= now() LIMIT ${PRUNE_BATCH})`.catch(
      () => undefined, // the next prune takes them
    );
  }
}
