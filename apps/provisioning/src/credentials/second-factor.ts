/** Whether an access token shows a second factor recent enough to provision or revoke a key. */
import type { Principal } from '@latchkey/service-kit';

/** `amr` values (RFC 8176) that prove a second factor beyond the password. */
const SECOND_FACTORS = new Set(['otp', 'mfa']);
const CLOCK_SKEW_SECONDS = 30;

export type SecondFactorProblem = 'mfa_missing' | 'mfa_stale';

export function secondFactorProblem(
  principal: Pick<Principal, 'amr' | 'authTime'>,
  freshnessSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): SecondFactorProblem | null {
  if (!principal.amr.some((m) => SECOND_FACTORS.has(m))) return 'mfa_missing';
  const age = nowSeconds - principal.authTime;
  if (age > freshnessSeconds || age < -CLOCK_SKEW_SECONDS) return 'mfa_stale';
  return null;
}
