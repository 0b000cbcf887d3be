#!/usr/bin/env node
// `npm start`: the set-up, then the four services in the foreground. Ctrl-C stops them.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { root, setup } from './setup.mjs';

const require = createRequire(import.meta.url);

async function main() {
  await setup({ profile: 'dev' });
  const { startAll, ports, catalog, serviceEnv } = require('./services.cjs');
  const { stop } = await startAll({ profile: 'dev' });
  // First start only: the demo tenant, an operator and users; prints their credentials once.
  spawnSync(process.execPath, ['dist/apps/auth/src/seed/seed.js'], {
    cwd: root,
    env: serviceEnv('auth', 'dev'),
    stdio: 'inherit',
  });
  const rows = catalog.services.map((s) => {
    const p = ports(s.name);
    return `  ${s.name.padEnd(13)} gRPC 127.0.0.1:${p.grpc}   HTTP http://127.0.0.1:${p.http}  (/healthz /readyz /metrics)`;
  });
  console.log(`
latchkey is running.
${rows.join('\n')}
  Kafka 127.0.0.1:9092 · PostgreSQL 127.0.0.1:5432 (databases latchkey_<service>) · Redis 127.0.0.1:6379

Try it:
  curl -s http://127.0.0.1:8081/readyz
  curl -s -X POST http://127.0.0.1:8081/v1/devices -H 'content-type: application/json' -d '{...}'   (see README)
  curl -s http://127.0.0.1:8084/v1/tenants/<tenantId>/audit-events

Ctrl-C stops the services; \`npm run stack down\` stops what the stack started.
`);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping services…');
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err) => {
  console.error(`npm start failed: ${err.message}`);
  process.exit(1);
});
