// Prisma CLI configuration for the registration database (Prisma 6.19, no engine binaries:
// the schema engine runs as WebAssembly through the pg driver adapter).
// Database: $REGISTRATION_DATABASE_URL, else $DATABASE_URL, else PGHOST/PGPORT/PGUSER/PGPASSWORD
// + $LATCHKEY_DB_PREFIX (default latchkey_) + "registration". Prefer: node tools/scripts/db.mjs <cmd> registration
import { defineConfig } from 'prisma/config';
// A relative import on purpose: the Prisma CLI loads this file with jiti, which does not
// know the tsconfig path aliases. The module depends on nothing but @prisma/adapter-pg.
import {
  databaseUrlFor,
  pgAdapterFromUrl,
} from '../../libs/service-kit/src/database/prisma-adapter';

const url = databaseUrlFor('registration');
// The schema's `url = env("DATABASE_URL")` must resolve, or the CLI tries to download
// a query engine. It is not used to connect: the adapter below is.
process.env.DATABASE_URL ||= url;

export default defineConfig({
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
