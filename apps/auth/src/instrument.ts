// Must be the first import of main.ts: patches modules before they load.
import { startTelemetry } from '@latchkey/service-kit/telemetry';

startTelemetry('auth');
