// What a chaos scenario must leave behind, checked against the databases of the private stack:
// every successful operation stored, and the tenant's audit trail holding exactly one record per
// event the services committed (no loss, no duplicate), with a chain that verifies.
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { databaseUrl } from './infra.mjs';

const require = createRequire(import.meta.url);
const pg = require('pg');

async function query(service, sql, params) {
  const c = new pg.Client({ connectionString: databaseUrl(service) });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Event ids the three producing services committed for the tenant (their outboxes). */
async function committedEvents(tenantId) {
  const rows = await Promise.all(
    ['registration', 'provisioning', 'auth'].map((s) =>
      query(s, 'select event_id from outbox_events where tenant_id = $1', [tenantId]),
    ),
  );
  return new Set(rows.flat().map((r) => r.event_id));
}

const auditRows = (tenantId) =>
  query(
    'audit',
    `select event_id, event_type, device_uid, credential_uid, data->>'sessionId' as session_id
       from audit_records where tenant_id = $1`,
    [tenantId],
  );

/** Waits (up to `timeoutMs`) until audit holds every committed event of the tenant. */
export async function waitForAudit(tenantId, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [committed, records] = await Promise.all([
      committedEvents(tenantId),
      auditRows(tenantId),
    ]);
    const have = new Set(records.map((r) => r.event_id));
    const missing = [...committed].filter((id) => !have.has(id));
    if (!missing.length || Date.now() > deadline) return { committed, records, missing };
    await sleep(500);
  }
}

const TYPE = {
  register: ['dev.latchkey.device.registered.v1', (r) => r.device_uid, 'deviceId'],
  provision: ['dev.latchkey.credential.provisioned.v1', (r) => r.credential_uid, 'credentialId'],
  'sign-in': ['dev.latchkey.auth.sign_in.succeeded.v1', (r) => r.session_id, 'sessionId'],
};

/**
 * The audit verdict of a tenant after a scenario: `lost` committed events audit does not hold,
 * `unknown` audit records of no committed event, and per successful operation of the ledger the
 * number of its records (`duplicated`: more than one, `unrecorded`: none).
 */
export async function auditVerdict(tenantId, ledger, { timeoutMs = 120_000 } = {}) {
  const { committed, records, missing } = await waitForAudit(tenantId, timeoutMs);
  const unknown = records.filter((r) => !committed.has(r.event_id)).length;
  const counts = new Map();
  for (const r of records) {
    for (const [kind, [type, idOf]] of Object.entries(TYPE))
      if (r.event_type === type && idOf(r)) {
        const key = `${kind}:${idOf(r)}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
  }
  let duplicated = 0;
  let unrecorded = 0;
  for (const e of ledger.ok()) {
    const [, , field] = TYPE[e.kind];
    const n = counts.get(`${e.kind}:${e.ids[field]}`) ?? 0;
    if (n > 1) duplicated++;
    if (n === 0) unrecorded++;
  }
  return {
    committed: committed.size,
    records: records.length,
    lost: missing.length,
    unknown,
    duplicated,
    unrecorded,
  };
}

/** Successful operations whose result is not stored (must be 0), and failed ones that were. */
export async function storedVerdict(tenantId, ledger) {
  const ids = (kind, field) =>
    ledger.entries.filter((e) => e.kind === kind && e.ids).map((e) => e.ids[field]);
  const [devices, credentials, sessions] = await Promise.all([
    query('registration', 'select id::text from devices where tenant_id = $1', [tenantId]),
    query('provisioning', 'select id from credentials where tenant_id = $1', [tenantId]),
    query('auth', 'select id::text from key_sessions where tenant_id = $1', [tenantId]),
  ]);
  const stored = new Set([...devices, ...credentials, ...sessions].map((r) => r.id));
  const okIds = [
    ...ids('register', 'deviceId'),
    ...ids('provision', 'credentialId'),
    ...ids('sign-in', 'sessionId'),
  ];
  return { okNotStored: okIds.filter((id) => !stored.has(id)).length };
}
