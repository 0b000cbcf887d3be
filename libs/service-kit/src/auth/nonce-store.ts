/**
 * Single-use nonces in Redis (one implementation for the whole platform):
 * 32 random bytes (base64url), bound to tenant + subject (device) + purpose,
 * short TTL, consumed atomically with GETDEL so that concurrent reuse of one
 * nonce succeeds at most once. Every operation touches one key, so it works on
 * a single Redis and on Redis Cluster alike.
 */
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/redis';

export type NoncePurpose = 'sign_in' | 'refresh' | 'provisioning';

export interface NonceBinding {
  tenantId: string;
  /** The subject the nonce is for: a device id. */
  deviceId: string;
  purpose: NoncePurpose;
}

const NONCE_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const key = (nonce: string) => `latchkey:nonce:${nonce}`;
const encode = (b: NonceBinding) => `${b.tenantId}|${b.deviceId}|${b.purpose}`;

export class NonceStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly ttlSeconds: number,
  ) {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError('ttlSeconds');
  }

  async issue(
    binding: NonceBinding,
    now = Date.now(),
  ): Promise<{ nonce: string; expiresAt: Date }> {
    const nonce = randomBytes(32).toString('base64url');
    const ok = await this.redis.set(key(nonce), encode(binding), 'EX', this.ttlSeconds, 'NX');
    if (ok !== 'OK') throw new Error('nonce collision'); // 2^-256: practically unreachable
    return { nonce, expiresAt: new Date(now + this.ttlSeconds * 1000) };
  }

  /**
   * True exactly once for a live nonce issued with this binding; false for an
   * unknown, expired, already used or differently bound nonce. A nonce presented
   * with the wrong binding is burned too: it was exposed to the wrong party.
   */
  async consume(nonce: string, binding: NonceBinding): Promise<boolean> {
    if (typeof nonce !== 'string' || !NONCE_FORMAT.test(nonce)) return false;
    const stored = await this.redis.getdel(key(nonce));
    return stored !== null && stored === encode(binding);
  }
}
