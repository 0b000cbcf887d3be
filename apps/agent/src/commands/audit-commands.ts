/** audit tail / audit verify: an administrator follows and verifies a tenant's audit trail (the rules of libs/audit-chain). */
import { readFileSync } from 'node:fs';
import {
  auditKeysFromJwks,
  ChainCollector,
  chainItemFromNdjson,
  type ChainRecord,
  formatVerification,
} from '@latchkey/audit-chain';
import type { AgentContext } from '../cli/agent-context';
import { ocsfActivityName, ocsfClassName } from '../cli/ocsf-names';
import { UsageError } from '../server/endpoints';
import { primarySignIn } from './primary-sign-in';

function tenantOf(ctx: AgentContext): string {
  const tenant =
    (ctx.flags.tenant as string | undefined) ??
    (ctx.keystore.has('device') ? ctx.device().tenantId : undefined);
  if (!tenant) throw new UsageError('give --tenant <tenant id> (this device is not registered)');
  return tenant;
}

async function fetchText(url: string, accessToken?: string): Promise<string> {
  const res = await fetch(url, {
    headers: accessToken ? { authorization: `Bearer ${accessToken}` } : {},
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (!res.ok) {
    let detail = text.slice(0, 300);
    try {
      const problem = JSON.parse(text) as { title?: string; detail?: string };
      detail = problem.detail ?? problem.title ?? detail;
    } catch {
      // not problem+json: keep the text
    }
    throw new Error(`${new URL(url).pathname}: HTTP ${res.status}: ${detail}`);
  }
  return text;
}

/** The tenant's unfiltered export (records and signed checkpoints), from a file or the audit service. */
async function exportLines(
  ctx: AgentContext,
  tenant: string,
  accessToken?: string,
): Promise<string[]> {
  const file = ctx.flags.file as string | undefined;
  const text = file
    ? readFileSync(file, 'utf8')
    : await fetchText(
        `${ctx.endpoints().auditUrl}/v1/tenants/${encodeURIComponent(tenant)}/audit-events/export`,
        accessToken,
      );
  return text.split('\n').filter((l) => l.trim());
}

/** An admin's access token: LATCHKEY_ACCESS_TOKEN (scripts), else password + TOTP sign-in. */
async function adminToken(ctx: AgentContext, tenant: string): Promise<string | undefined> {
  if (ctx.flags.file) return undefined;
  if (process.env.LATCHKEY_ACCESS_TOKEN && !ctx.flags.user)
    return process.env.LATCHKEY_ACCESS_TOKEN;
  return (await primarySignIn(ctx, tenant)).accessToken;
}

export async function auditVerify(ctx: AgentContext): Promise<number> {
  const tenant = tenantOf(ctx);
  const token = await adminToken(ctx, tenant);
  const keysAt =
    (ctx.flags.keys as string | undefined) ??
    `${ctx.endpoints().auditUrl}/.well-known/audit-keys.json`;
  const keys = auditKeysFromJwks(
    /^https?:\/\//.test(keysAt) ? await fetchText(keysAt) : readFileSync(keysAt, 'utf8'),
  );
  const collector = new ChainCollector(tenant);
  const lines = await exportLines(ctx, tenant, token);
  lines.forEach((line, i) => {
    try {
      const item = chainItemFromNdjson(line);
      if (item) collector.add(item);
    } catch (err) {
      throw new UsageError(`export line ${i + 1}: ${(err as Error).message}`);
    }
  });
  const results = collector.verify(keys, { allowPartial: Boolean(ctx.flags['allow-partial']) });
  const ok = results.length > 0 && results.every((r) => r.ok);
  ctx.result({ ok, tenants: results }, formatVerification(results));
  return ok ? 0 : 1;
}

/** One readable line per OCSF record: seq, time, class, activity, outcome, user, device. */
export function describeRecord(r: ChainRecord): string {
  const rec = r.record as Record<string, unknown> & {
    time?: number;
    class_name?: string;
    class_uid?: number;
    activity_name?: string;
    activity_id?: number;
    status?: string;
    status_id?: number;
    user?: { uid?: string; name?: string };
    device?: { uid?: string };
    metadata?: { event_code?: string };
  };
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString() : '';
  const outcome =
    rec.status ?? (rec.status_id === 1 ? 'Success' : rec.status_id === 2 ? 'Failure' : '-');
  const user = rec.user ? (rec.user.name ?? rec.user.uid ?? '-') : '-';
  return [
    String(r.seq).padStart(5),
    time,
    (rec.class_name ?? ocsfClassName(rec.class_uid)).padEnd(17),
    (rec.activity_name ?? ocsfActivityName(rec.class_uid, rec.activity_id)).padEnd(20),
    String(outcome).padEnd(8),
    `user=${user}`,
    `device=${rec.device?.uid ?? '-'}`,
  ].join('  ');
}

export async function auditTail(ctx: AgentContext): Promise<number> {
  const tenant = tenantOf(ctx);
  const token = await adminToken(ctx, tenant);
  const intervalMs = Number(ctx.flags.interval ?? 2) * 1000;
  let after = Number(ctx.flags['from-seq'] ?? 0);
  for (;;) {
    const lines = await exportLines(ctx, tenant, token);
    for (const line of lines) {
      const item = chainItemFromNdjson(line);
      if (!item || item.kind !== 'record' || item.data.seq <= after) continue;
      after = item.data.seq;
      ctx.out(ctx.json ? `${JSON.stringify(item.data)}\n` : `${describeRecord(item.data)}\n`);
    }
    if (!ctx.flags.follow) return 0;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
