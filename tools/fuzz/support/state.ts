/**
 * A cheap fingerprint of what the services have stored, to show that refused
 * requests change nothing: for each service database of the test profile,
 *  - every row of the watched tenants (tables with a tenant_id column), hashed;
 *  - the row count of every table that only the service's own API writes
 *    (catches a write under another tenant id too).
 * Left out, because they change on their own while the suites run: the
 * outbox (the relay marks rows published; failure events are by design),
 * what the Kafka consumers write (the audit store, registration's tenant CAs,
 * provisioning's processed events: the broker is shared with the other test
 * profiles) and the audit service's periodic checkpoints.
 */
import { Client } from 'pg';
import { launcher, TEST_PROFILE } from '@latchkey/testing';

const SERVICES = ['auth', 'registration', 'provisioning', 'audit'] as const;

/** Tables written by background work (consumers, relay, timers), per service. */
const BACKGROUND: Record<string, string[]> = {
  auth: ['outbox_events', '_prisma_migrations'],
  registration: ['outbox_events', '_prisma_migrations', 'tenants', 'tenant_cas'],
  provisioning: ['outbox_events', '_prisma_migrations', 'processed_events'],
  audit: [
    'outbox_events',
    '_prisma_migrations',
    'audit_records',
    'audit_chain_heads',
    'audit_checkpoints',
    'audit_signing_keys',
  ],
};

export class StateProbe {
  private constructor(private readonly dbs: Map<string, Client>) {}

  static async open(): Promise<StateProbe> {
    const dbs = new Map<string, Client>();
    for (const s of SERVICES) {
      const c = new Client({
        connectionString: launcher.serviceEnv(s, TEST_PROFILE).DATABASE_URL,
      });
      await c.connect();
      dbs.set(s, c);
    }
    return new StateProbe(dbs);
  }

  /** service.table → count / hash; compare two fingerprints with toEqual. */
  async fingerprint(tenantIds: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [service, db] of this.dbs) {
      const tables = await db.query<{ table_name: string; scoped: boolean }>(
        `SELECT table_name, bool_or(column_name = 'tenant_id') AS scoped
           FROM information_schema.columns WHERE table_schema = 'public'
          GROUP BY table_name ORDER BY table_name`,
      );
      for (const { table_name: table, scoped } of tables.rows) {
        const background = BACKGROUND[service]?.includes(table) ?? false;
        if (!background) {
          const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`);
          out[`${service}.${table}#rows`] = r.rows[0]!.n;
        }
        if (scoped && !background) {
          const r = await db.query<{ n: string; h: string | null }>(
            `SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h
               FROM "${table}" t WHERE t.tenant_id::text = ANY($1)`,
            [tenantIds],
          );
          out[`${service}.${table}@tenants`] = `${r.rows[0]!.n}:${r.rows[0]!.h ?? ''}`;
        }
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.dbs.values()].map((c) => c.end()));
  }
}
