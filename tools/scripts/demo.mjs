#!/usr/bin/env node
// `npm run demo [-- --transport https] [--tpm] [--port-offset N]`: the device agent's
// journey against the running stack of `npm start` (see demo.cjs).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { runDemo, DemoError } = require('./demo.cjs');

const USAGE = `usage: npm run demo -- [--transport grpc|https] [--tpm] [--port-offset <n>]

  --transport    how the agent calls the services: gRPC (default) or their HTTPS JSON APIs
  --tpm          device, transport and user keys inside a software TPM (swtpm) started for
                 the demo, with an AIK certified by a local AIK CA that the tenant trusts
  --port-offset  the profile's port offset (tools/services.json): 0 is the stack of \`npm start\``;

let values;
try {
  ({ values } = parseArgs({
    options: {
      transport: { type: 'string', default: 'grpc' },
      tpm: { type: 'boolean', default: false },
      'port-offset': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  console.error(`demo: ${err.message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const portOffset = Number(values['port-offset']);
if (!Number.isInteger(portOffset) || portOffset < 0) {
  console.error(`demo: --port-offset must be a whole number\n${USAGE}`);
  process.exit(2);
}

try {
  const result = await runDemo({
    portOffset,
    transport: values.transport,
    tpm: values.tpm || undefined,
  });
  process.exit(result.verification.ok ? 0 : 1);
} catch (err) {
  console.error(`\ndemo failed: ${err instanceof DemoError ? err.message : err.stack}`);
  process.exit(1);
}
