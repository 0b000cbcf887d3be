/** The signed content of a checkpoint: JCS({hash, kid, seq, tenant_id, time}). */
import { canonicalJson } from '../chain/canonical-json';

export interface CheckpointStatement {
  tenant_id: string;
  seq: number;
  hash: string;
  /** RFC 3339 with milliseconds, UTC. */
  time: string;
  kid: string;
}

export function checkpointPayload(c: CheckpointStatement): string {
  return canonicalJson({
    hash: c.hash,
    kid: c.kid,
    seq: c.seq,
    tenant_id: c.tenant_id,
    time: c.time,
  });
}
