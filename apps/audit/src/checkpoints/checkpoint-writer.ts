/** Signs and stores checkpoints inside the caller's transaction (which holds the chain locks). */
import { Injectable } from '@nestjs/common';
import type { SqlTx } from '../chain/chain-database';
import { AuditKeyring } from './audit-keyring.service';
import { checkpointPayload } from './checkpoint-payload';

@Injectable()
export class CheckpointWriter {
  constructor(private readonly keyring: AuditKeyring) {}

  async write(
    tx: SqlTx,
    heads: { tenantId: string; seq: bigint; hash: string }[],
    now = new Date(),
  ): Promise<void> {
    const time = now.toISOString();
    const kid = this.keyring.kid;
    const signatures = heads.map((h) =>
      this.keyring.sign(
        checkpointPayload({ tenant_id: h.tenantId, seq: Number(h.seq), hash: h.hash, time, kid }),
      ),
    );
    const tenants = heads.map((h) => h.tenantId);
    const seqs = heads.map((h) => h.seq.toString());
    await tx.query(
      `INSERT INTO audit_checkpoints (tenant_id, seq, hash, time, kid, signature)
       SELECT t, s, h, $4::timestamptz, $5, sig
         FROM unnest($1::text[], $2::bigint[], $3::text[], $6::text[]) AS x(t, s, h, sig)
       ON CONFLICT (tenant_id, seq) DO NOTHING`,
      [tenants, seqs, heads.map((h) => h.hash), time, kid, signatures],
    );
    await tx.query(
      `UPDATE audit_chain_heads h SET checkpoint_seq = x.s, checkpoint_at = $3::timestamptz
         FROM (SELECT t, max(s) AS s FROM unnest($1::text[], $2::bigint[]) AS r(t, s) GROUP BY t) x
        WHERE h.tenant_id = x.t AND h.checkpoint_seq < x.s`,
      [tenants, seqs, time],
    );
  }
}
