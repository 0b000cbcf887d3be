/**
 * VerifyChain: recomputes a tenant's hash chain from the stored records and checks
 * every checkpoint signature, trusting nothing else the database says (the chain
 * head table is only used to know where the chain should end). After retention,
 * verification starts from the signed checkpoint just below the first kept record.
 */
import { Inject, Injectable } from '@nestjs/common';
import { DomainError } from '@latchkey/service-kit';
import { PrismaClient } from '../generated/prisma/client';
import { AuditKeyring } from '../checkpoints/audit-keyring.service';
import { checkpointPayload } from '../checkpoints/checkpoint-payload';
import { canonicalJson } from '../chain/canonical-json';
import { chainHashOfCanonical, GENESIS_HASH } from '../chain/hash-chain';
import { ChainVerificationMetrics } from './chain-verification-metrics';

export type ChainFault =
  | 'HASH_MISMATCH'
  | 'PREV_HASH_MISMATCH'
  | 'SEQ_GAP'
  | 'RECORD_MISMATCH'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_UNKNOWN_KEY'
  | 'CHECKPOINT_MISMATCH'
  | 'RECORDS_MISSING'
  | 'ANCHOR_MISSING';

export interface ChainVerification {
  ok: boolean;
  firstInvalidSeq: bigint;
  reason: ChainFault | '';
  recordsVerified: number;
  checkpointsVerified: number;
  fromSeq: bigint;
  toSeq: bigint;
  headHash: string;
}

const CHUNK = 1000;

@Injectable()
export class ChainVerifier {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    private readonly keyring: AuditKeyring,
    @Inject(ChainVerificationMetrics) private readonly metrics: ChainVerificationMetrics,
  ) {}

  async verify(tenantId: string, fromSeq = 0n, toSeq = 0n): Promise<ChainVerification> {
    if (fromSeq < 0n || toSeq < 0n || (toSeq && fromSeq > toSeq))
      throw DomainError.invalidArgument('INVALID_RANGE', 'need 0 <= from_seq <= to_seq');
    const head = await this.db.auditChainHead.findUnique({ where: { tenantId } });
    const first = await this.db.auditRecord.findFirst({
      where: { tenantId },
      orderBy: { seq: 'asc' },
      select: { seq: true },
    });
    const last = await this.db.auditRecord.findFirst({
      where: { tenantId },
      orderBy: { seq: 'desc' },
      select: { seq: true },
    });
    const lastCheckpoint = await this.db.auditCheckpoint.findFirst({
      where: { tenantId },
      orderBy: { seq: 'desc' },
      select: { seq: true },
    });
    // Where the chain should end: the largest of what the rows, the head and the checkpoints claim.
    const claimedEnd = [head?.seq ?? 0n, last?.seq ?? 0n, lastCheckpoint?.seq ?? 0n].reduce(
      (a, b) => (a > b ? a : b),
    );
    const oldest = first?.seq ?? claimedEnd + 1n;
    const start = fromSeq > oldest ? fromSeq : oldest;
    const end = toSeq || claimedEnd;
    const out: ChainVerification = {
      ok: true,
      firstInvalidSeq: 0n,
      reason: '',
      recordsVerified: 0,
      checkpointsVerified: 0,
      fromSeq: start,
      toSeq: end,
      headHash: '',
    };
    const faults: { seq: bigint; reason: ChainFault }[] = [];
    const fail = (seq: bigint, reason: ChainFault) => faults.push({ seq, reason });

    // What the first record in range must link to.
    let prev: string | undefined;
    if (start === 1n) prev = GENESIS_HASH;
    else if (start <= end) {
      const before = await this.db.auditRecord.findUnique({
        where: { tenantId_seq: { tenantId, seq: start - 1n } },
        select: { hash: true },
      });
      const anchor = before
        ? undefined
        : await this.db.auditCheckpoint.findUnique({
            where: { tenantId_seq: { tenantId, seq: start - 1n } },
          });
      if (before) prev = before.hash;
      else if (anchor) {
        const sig = await this.checkSignature(anchor);
        if (sig) fail(anchor.seq, sig);
        else out.checkpointsVerified++;
        prev = anchor.hash;
      } else fail(start, 'ANCHOR_MISSING');
    }

    const hashes = new Map<bigint, string>();
    let expected = start;
    let after = start - 1n;
    while (expected <= end && !faults.length) {
      const rows = await this.db.auditRecord.findMany({
        where: { tenantId, seq: { gt: after, lte: end } },
        orderBy: { seq: 'asc' },
        take: CHUNK,
        select: { seq: true, prevHash: true, hash: true, record: true, eventId: true },
      });
      if (!rows.length) break;
      for (const r of rows) {
        if (r.seq !== expected) {
          fail(expected, 'SEQ_GAP');
          break;
        }
        const rec = r.record as {
          metadata?: { sequence?: number; tenant_uid?: string; uid?: string };
        };
        if (
          rec?.metadata?.sequence !== Number(r.seq) ||
          rec.metadata.tenant_uid !== tenantId ||
          rec.metadata.uid !== r.eventId
        ) {
          fail(r.seq, 'RECORD_MISMATCH');
          break;
        }
        if (prev !== undefined && r.prevHash !== prev) {
          fail(r.seq, 'PREV_HASH_MISMATCH');
          break;
        }
        let recomputed: string;
        try {
          recomputed = chainHashOfCanonical(r.prevHash, canonicalJson(r.record));
        } catch {
          recomputed = '';
        }
        if (recomputed !== r.hash) {
          fail(r.seq, 'HASH_MISMATCH');
          break;
        }
        hashes.set(r.seq, r.hash);
        prev = r.hash;
        out.headHash = r.hash;
        out.recordsVerified++;
        expected = r.seq + 1n;
      }
      after = rows[rows.length - 1]!.seq;
    }
    if (!faults.length && expected <= end) fail(expected, 'RECORDS_MISSING');

    // Checkpoints in range: signature, and the hash they vouch for.
    const checkpoints = await this.db.auditCheckpoint.findMany({
      where: { tenantId, seq: { gte: start, lte: end } },
      orderBy: { seq: 'asc' },
    });
    for (const c of checkpoints) {
      const sig = await this.checkSignature(c);
      if (sig) {
        fail(c.seq, sig);
        break;
      }
      const h = hashes.get(c.seq);
      if (h === undefined) continue; // beyond the first fault: already reported
      if (h !== c.hash) {
        fail(c.seq, 'CHECKPOINT_MISMATCH');
        break;
      }
      out.checkpointsVerified++;
    }
    if (faults.length) {
      const firstFault = faults.reduce((a, b) => (b.seq < a.seq ? b : a));
      out.ok = false;
      out.firstInvalidSeq = firstFault.seq;
      out.reason = firstFault.reason;
    }
    this.metrics.record(out);
    return out;
  }

  private async checkSignature(c: {
    tenantId: string;
    seq: bigint;
    hash: string;
    time: Date;
    kid: string;
    signature: string;
  }): Promise<ChainFault | undefined> {
    const payload = checkpointPayload({
      tenant_id: c.tenantId,
      seq: Number(c.seq),
      hash: c.hash,
      time: c.time.toISOString(),
      kid: c.kid,
    });
    const ok = await this.keyring.verify(c.kid, payload, c.signature);
    if (ok === 'UNKNOWN_KEY') return 'CHECKPOINT_UNKNOWN_KEY';
    return ok ? undefined : 'CHECKPOINT_SIGNATURE_INVALID';
  }
}
