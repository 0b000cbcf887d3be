import { secondFactorProblem } from './second-factor';

describe('secondFactorProblem', () => {
  const now = 1_800_000_000;

  it('accepts password + OTP inside the window', () => {
    expect(secondFactorProblem({ amr: ['pwd', 'otp'], authTime: now - 599 }, 600, now)).toBeNull();
  });

  it('reports a missing second factor for a password-only sign-in', () => {
    expect(secondFactorProblem({ amr: ['pwd'], authTime: now }, 600, now)).toBe('mfa_missing');
  });

  it('reports a second factor older than the window as stale', () => {
    expect(secondFactorProblem({ amr: ['pwd', 'otp'], authTime: now - 601 }, 600, now)).toBe(
      'mfa_stale',
    );
  });

  it('refuses an auth_time in the future beyond clock skew', () => {
    expect(secondFactorProblem({ amr: ['pwd', 'otp'], authTime: now + 120 }, 600, now)).toBe(
      'mfa_stale',
    );
  });
});
