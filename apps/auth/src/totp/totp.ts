/**
 * TOTP (RFC 6238) on top of otplib: base32 secrets, SHA-1 / 30 s / 6 digits by
 * default, ±1 step. `verify` returns the matched time step so callers can refuse
 * a step that was already used (a code once accepted is never accepted again).
 */
import { authenticator } from 'otplib';
import { HashAlgorithms } from '@otplib/core';

export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface TotpParameters {
  algorithm: TotpAlgorithm;
  digits: number;
  periodSeconds: number;
}

export const DEFAULT_TOTP: TotpParameters = { algorithm: 'SHA1', digits: 6, periodSeconds: 30 };

const ALGORITHMS: Record<TotpAlgorithm, HashAlgorithms> = {
  SHA1: HashAlgorithms.SHA1,
  SHA256: HashAlgorithms.SHA256,
  SHA512: HashAlgorithms.SHA512,
};

function engine(p: TotpParameters, atMs: number) {
  return authenticator.clone({
    algorithm: ALGORITHMS[p.algorithm],
    digits: p.digits,
    step: p.periodSeconds,
    window: 1,
    epoch: atMs,
  });
}

/** A new random secret (160 bits, base32). */
export function generateTotpSecret(): string {
  return authenticator.generateSecret(20);
}

export function totpCode(secret: string, p: TotpParameters = DEFAULT_TOTP, atMs = Date.now()) {
  return engine(p, atMs).generate(secret);
}

/** The time step a code matches (current ±1), or null. */
export function verifyTotp(
  code: string,
  secret: string,
  p: TotpParameters = DEFAULT_TOTP,
  atMs = Date.now(),
): number | null {
  if (!new RegExp(`^\\d{${p.digits}}$`).test(code)) return null;
  const delta = engine(p, atMs).checkDelta(code, secret);
  if (delta === null) return null;
  return Math.floor(atMs / 1000 / p.periodSeconds) + delta;
}

/** otpauth:// URI for authenticator apps (Key URI Format). */
export function totpUri(
  secret: string,
  account: string,
  issuer: string,
  p: TotpParameters = DEFAULT_TOTP,
): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const q = new URLSearchParams({
    secret,
    issuer,
    algorithm: p.algorithm,
    digits: String(p.digits),
    period: String(p.periodSeconds),
  });
  return `otpauth://totp/${label}?${q.toString()}`;
}
