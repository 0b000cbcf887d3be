/**
 * Single-use nonces in Redis: 32 random bytes, bound to tenant + device +
 * purpose, short TTL, consumed atomically (GETDEL), so concurrent reuse of
 * one nonce succeeds at most once.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

export type NoncePurpose = 'sign_in' | 'refresh' | 'provisioning';

export interface NonceBinding {
  tenantId: string;
  deviceId: string;
  purpose: NoncePurpose;
}

const key = (nonce: string) => `latchkey:nonce:${nonce}`;

export class NonceStore {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async issue(
    binding: NonceBinding,
    now = Date.now(),
  ): Promise<{ nonce: string; expiresAt: Date }> {
    const nonce = randomBytes(32).toString('base64url');
    const ok = await this.redis.set(
      key(nonce),
      JSON.stringify(binding),
      'EX',
      this.ttlSeconds,
      'NX',
    );
    if (ok !== 'OK') throw new Error('nonce collision'); // 2^-256: practically unreachable
    return { nonce, expiresAt: new Date(now + this.ttlSeconds * 1000) };
  }

  /** True once for a live nonce issued with exactly this binding; false otherwise. */
  async consume(nonce: string, binding: NonceBinding): Promise<boolean> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(nonce)) return false;
    const stored = await this.redis.getdel(key(nonce));
    if (!stored) return false;
    const b = JSON.parse(stored) as NonceBinding;
    return (
      b.tenantId === binding.tenantId &&
      b.deviceId === binding.deviceId &&
      b.purpose === binding.purpose
    );
  }
}
