/**
 * Redis-backed limits on password guessing: a per-source rate limit (one-minute
 * windows from the first attempt) and per-account lockout (N failures within a window lock
 * the account for a while; tenant policy). Keys of one account share a hash tag,
 * so the Lua script works on Redis Cluster too. Accounts are keyed by tenant +
 * username, so unknown usernames lock exactly like real ones.
 */
import { Inject, Injectable } from '@nestjs/common';
import { REDIS, type RedisClient } from '@latchkey/service-kit';
import { AUTH_CONFIG, type AuthConfig } from '../config';

export interface LockoutPolicy {
  threshold: number;
  windowSeconds: number;
  durationSeconds: number;
}

const account = (tenantId: string, username: string) =>
  `latchkey:auth:{${tenantId}:${Buffer.from(username).toString('base64url')}}`;

// KEYS[1] failure counter, KEYS[2] lock; ARGV threshold, window, duration.
// Returns {failures, lockedNow(0/1)}.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
local locked = 0
if n >= tonumber(ARGV[1]) then
  if redis.call('SET', KEYS[2], n, 'EX', tonumber(ARGV[3]), 'NX') then locked = 1 end
  redis.call('DEL', KEYS[1])
end
return {n, locked}
`;

@Injectable()
export class SignInThrottle {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  /**
   * Counts one attempt from `source`. Returns `limited` past the limit, and
   * `firstOverLimit` for the one attempt that crossed it (worth an event; the
   * rest of a flood is not recorded one by one).
   */
  async admit(source: string): Promise<{ limited: boolean; firstOverLimit: boolean }> {
    // The minute starts at the first attempt (EXPIRE NX), so it does not reset on the clock's minute.
    const key = `latchkey:auth:rate:{${source}}`;
    const [[, n]] = (await this.redis.multi().incr(key).expire(key, 60, 'NX').exec()) as [
      [Error | null, number],
      [Error | null, number],
    ];
    const limit = this.config.SIGN_IN_RATE_LIMIT_PER_MINUTE;
    return { limited: n > limit, firstOverLimit: n === limit + 1 };
  }

  /** Seconds the account stays locked (0 when it is not locked). */
  async lockedFor(tenantId: string, username: string): Promise<number> {
    const ttl = await this.redis.ttl(`${account(tenantId, username)}:lock`);
    return ttl > 0 ? ttl : 0;
  }

  async recordFailure(
    tenantId: string,
    username: string,
    policy: LockoutPolicy,
  ): Promise<{ failures: number; lockedNow: boolean }> {
    const base = account(tenantId, username);
    const [failures, locked] = (await this.redis.eval(
      RECORD_FAILURE,
      2,
      `${base}:fail`,
      `${base}:lock`,
      policy.threshold,
      policy.windowSeconds,
      policy.durationSeconds,
    )) as [number, number];
    return { failures, lockedNow: locked === 1 };
  }

  async clearFailures(tenantId: string, username: string): Promise<void> {
    await this.redis.del(`${account(tenantId, username)}:fail`);
  }
}
