/** Signs and stores checkpoints inside the caller's transaction (which holds the chain locks). */
import { Injectable } from '@nestjs/common';
import type { Prisma } from '../generated/prisma/client';
import { AuditKeyring } from './audit-keyring.service';
import { checkpointPayload } from './checkpoint-payload';

@Injectable()
export class CheckpointWriter {
  constructor(private readonly keyring: AuditKeyring) {}

  async write(
    tx: Prisma.TransactionClient,
    heads: { tenantId: string; seq: bigint; hash: string }[],
    now = new Date(),
  ): Promise<void> {
    const time = new Date(Math.floor(now.getTime())).toISOString();
    const kid = this.keyring.kid;
    const rows = heads.map((h) => {
      const statement = { tenant_id: h.tenantId, seq: Number(h.seq), hash: h.hash, time, kid };
      return {
        ...statement,
        seq: h.seq.toString(),
        signature: this.keyring.sign(checkpointPayload(statement)),
      };
    });
    await tx.$executeRawUnsafe(
      `INSERT INTO audit_checkpoints (tenant_id, seq, hash, time, kid, signature)
       SELECT tenant_id, seq, hash, time, kid, signature
         FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, seq bigint, hash text,
           time timestamptz, kid text, signature text)
       ON CONFLICT (tenant_id, seq) DO NOTHING`,
      JSON.stringify(rows),
    );
    await tx.$executeRawUnsafe(
      `UPDATE audit_chain_heads h SET checkpoint_seq = x.seq, checkpoint_at = x.time
         FROM (SELECT tenant_id, max(seq) AS seq, max(time) AS time
                 FROM jsonb_to_recordset($1::jsonb) AS r(tenant_id text, seq bigint, time timestamptz)
                GROUP BY tenant_id) x
        WHERE h.tenant_id = x.tenant_id AND h.checkpoint_seq < x.seq`,
      JSON.stringify(rows),
    );
  }
}
