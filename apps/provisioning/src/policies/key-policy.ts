/** The tenant key policy as the domain sees it, its defaults and its validation. */
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';

export const KEY_ALGORITHMS = ['RS256', 'ES256'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export interface KeyPolicyRules {
  requireTpm: boolean;
  allowedAlgorithms: KeyAlgorithm[];
  mfaFreshnessSeconds: number;
  maxKeysPerUser: number;
  maxKeysPerDevice: number;
  maxKeysPerUserDevice: number;
  /** 0 = keys do not expire. */
  keyLifetimeSeconds: number;
  /** Roots the AIK chains of TPM key attestations must lead to (PEM). */
  tpmRootCertificatesPem: string[];
}

export interface EffectiveKeyPolicy extends KeyPolicyRules {
  tenantId: string;
  /** Unset while the tenant uses the defaults. */
  updatedAt?: Date;
}

/** What a tenant gets until an administrator changes it. */
export const DEFAULT_KEY_POLICY: Readonly<KeyPolicyRules> = Object.freeze({
  requireTpm: false,
  allowedAlgorithms: ['ES256', 'RS256'] as KeyAlgorithm[],
  mfaFreshnessSeconds: 600,
  maxKeysPerUser: 10,
  maxKeysPerDevice: 10,
  maxKeysPerUserDevice: 1,
  keyLifetimeSeconds: 0,
  tpmRootCertificatesPem: [],
});

function isCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return /^-----BEGIN CERTIFICATE-----/.test(pem.trim());
  } catch {
    return false;
  }
}

/** An administrator's policy: every field explicit, consistent limits. */
export const keyPolicyRules = z
  .object({
    requireTpm: z.boolean(),
    allowedAlgorithms: z
      .array(z.enum(KEY_ALGORITHMS, { errorMap: () => ({ message: 'must be RS256 or ES256' }) }))
      .min(1, 'must allow at least one algorithm')
      .transform((list) => [...new Set(list)].sort() as KeyAlgorithm[]),
    mfaFreshnessSeconds: z
      .number()
      .int()
      .min(60, 'must be at least 60 seconds')
      .max(86_400, 'must be at most one day'),
    maxKeysPerUser: z.number().int().min(1, 'must be at least 1').max(1000),
    maxKeysPerDevice: z.number().int().min(1, 'must be at least 1').max(1000),
    maxKeysPerUserDevice: z.number().int().min(1, 'must be at least 1').max(100),
    keyLifetimeSeconds: z
      .number()
      .int()
      .min(0)
      .max(10 * 365 * 86_400, 'must be at most ten years')
      .refine((s) => s === 0 || s >= 3600, 'must be 0 (no expiry) or at least one hour'),
    tpmRootCertificatesPem: z
      .array(
        z
          .string()
          .max(16_384)
          .refine(isCertificate, 'must be a PEM certificate')
          .transform((s) => s.trim()),
      )
      .max(20, 'at most 20 roots'),
  })
  .superRefine((p, ctx) => {
    if (p.maxKeysPerUserDevice > p.maxKeysPerUser)
      ctx.addIssue({
        code: 'custom',
        path: ['maxKeysPerUserDevice'],
        message: 'must not exceed maxKeysPerUser',
      });
    if (p.maxKeysPerUserDevice > p.maxKeysPerDevice)
      ctx.addIssue({
        code: 'custom',
        path: ['maxKeysPerUserDevice'],
        message: 'must not exceed maxKeysPerDevice',
      });
  });
