// Prisma CLI configuration for the provisioning database: see prisma-cli-config.ts (a relative
// import on purpose: the Prisma CLI loads this file with jiti, which does not know the
// tsconfig path aliases). Prefer: node tools/scripts/db.mjs <cmd> provisioning
import { prismaCliConfig } from '../../libs/service-kit/src/database/prisma-cli-config';

export default prismaCliConfig('provisioning');
