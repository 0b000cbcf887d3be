/**
 * The Prisma CLI configuration of one service's database (Prisma 6.19, no engine
 * binaries: the schema engine runs as WebAssembly through the pg driver adapter).
 * Each `apps/<service>/prisma.config.ts` is this with its service's name.
 *
 * Database: `$<SERVICE>_DATABASE_URL`, else `$DATABASE_URL`, else PGHOST/PGPORT/
 * PGUSER/PGPASSWORD + `$LATCHKEY_DB_PREFIX` (default latchkey_) + the service
 * (databaseUrlFor). Prefer `node tools/scripts/db.mjs <cmd> <service>`.
 *
 * The CLI loads the config files with jiti, which does not know the tsconfig path
 * aliases: they import this module by a relative path, and it depends on nothing
 * but the Prisma CLI and prisma-adapter.ts. Not exported from the library's index:
 * the services never load the CLI.
 */
import { defineConfig } from 'prisma/config';
import { databaseUrlFor, pgAdapterFromUrl } from './prisma-adapter';

export function prismaCliConfig(service: string) {
  const url = databaseUrlFor(service);
  // The schema's `url = env("DATABASE_URL")` must resolve, or the CLI tries to download
  // a query engine. It is not used to connect: the adapter below is.
  process.env.DATABASE_URL ||= url;
  return defineConfig({
    experimental: { adapter: true },
    engine: 'js',
    adapter: async () =>
      pgAdapterFromUrl(url, {
        // One connection: the schema engine's advisory lock is per session.
        max: 1,
        // The CLI does not always close the pool: do not wait for idle connections to time out.
        allowExitOnIdle: true,
        applicationName: 'prisma-cli',
      }),
    schema: 'prisma/schema.prisma',
    migrations: { path: 'prisma/migrations' },
  });
}
