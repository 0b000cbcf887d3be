/**
 * The per-tenant hash chain: hash = SHA-256(prev_hash ‖ JCS(record)), where
 * prev_hash is the previous record's hash as 32 raw bytes (32 zero bytes before
 * seq 1) and JCS(record) is the UTF-8 of the record's RFC 8785 canonical JSON.
 * Hashes travel as lowercase hex. tools/audit-verify implements the same rule
 * independently (it shares no code with the service on purpose).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json';

export const GENESIS_HASH = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

export function chainHash(prevHash: string, record: unknown): string {
  return chainHashOfCanonical(prevHash, canonicalJson(record));
}

export function chainHashOfCanonical(prevHash: string, canonical: string): string {
  if (!HEX64.test(prevHash)) throw new Error('prev_hash must be 64 lowercase hex characters');
  return createHash('sha256')
    .update(Buffer.from(prevHash, 'hex'))
    .update(canonical, 'utf8')
    .digest('hex');
}
