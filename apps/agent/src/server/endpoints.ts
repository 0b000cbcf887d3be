/**
 * Where the latchkey services are and how to reach them: gRPC or the HTTPS JSON
 * APIs, over TLS (the system roots or a chosen CA) or plaintext for local use.
 */

/** How the agent calls the services: gRPC, or their HTTPS JSON APIs (same operations and refusals). */
export type Protocol = 'grpc' | 'https';

export interface Endpoints {
  /** gRPC addresses (host:port). */
  registration: string;
  provisioning: string;
  auth: string;
  audit: string;
  /** HTTP(S) base URLs: auth (OIDC discovery) and audit (export, published keys). */
  authUrl: string;
  auditUrl: string;
  /** HTTP(S) base URLs of registration and provisioning (the HTTPS transport); absent in older device.json. */
  registrationUrl?: string;
  provisioningUrl?: string;
  /** The transport of the service calls; absent in older device.json (gRPC). */
  protocol?: Protocol;
  /** plaintext: local use only; tls: the system roots, or `caFile`. */
  transport: { mode: 'plaintext' | 'tls'; caFile?: string };
}

/** The default ports of tools/services.json (a deployment's profile shifts them by an offset). */
const PORTS = {
  registration: { grpc: 50051, http: 8081 },
  provisioning: { grpc: 50052, http: 8082 },
  auth: { grpc: 50053, http: 8083 },
  audit: { grpc: 50054, http: 8084 },
} as const;

export interface EndpointFlags {
  transport?: string;
  server?: string;
  'port-offset'?: string;
  plaintext?: boolean;
  'tls-ca'?: string;
  'registration-addr'?: string;
  'provisioning-addr'?: string;
  'auth-addr'?: string;
  'audit-addr'?: string;
  'auth-url'?: string;
  'audit-url'?: string;
  'registration-url'?: string;
  'provisioning-url'?: string;
}

/** Endpoints from the flags, on top of `base` (what the device stored at registration). */
export function endpointsFrom(flags: EndpointFlags, base?: Endpoints): Endpoints {
  const serverGiven = flags.server !== undefined || flags['port-offset'] !== undefined;
  const host = flags.server ?? '127.0.0.1';
  const offset = Number(flags['port-offset'] ?? 0);
  if (!Number.isInteger(offset) || offset < 0 || offset > 10000)
    throw new UsageError('--port-offset must be a whole number (0-10000)');
  const protocol = flags.transport ?? base?.protocol ?? 'grpc';
  if (protocol !== 'grpc' && protocol !== 'https')
    throw new UsageError('--transport is grpc or https');
  const plaintext = flags.plaintext ?? (base ? base.transport.mode === 'plaintext' : false);
  const scheme = plaintext ? 'http' : 'https';
  const derived = (s: keyof typeof PORTS, kind: 'grpc' | 'http') =>
    kind === 'grpc'
      ? `${host}:${PORTS[s][kind] + offset}`
      : `${scheme}://${host}:${PORTS[s][kind] + offset}`;
  const pick = (
    flag: string | undefined,
    s: keyof typeof PORTS,
    kind: 'grpc' | 'http',
    stored?: string,
  ) => flag ?? (serverGiven || !stored ? derived(s, kind) : stored);
  return {
    registration: pick(flags['registration-addr'], 'registration', 'grpc', base?.registration),
    provisioning: pick(flags['provisioning-addr'], 'provisioning', 'grpc', base?.provisioning),
    auth: pick(flags['auth-addr'], 'auth', 'grpc', base?.auth),
    audit: pick(flags['audit-addr'], 'audit', 'grpc', base?.audit),
    authUrl: pick(flags['auth-url'], 'auth', 'http', base?.authUrl),
    auditUrl: pick(flags['audit-url'], 'audit', 'http', base?.auditUrl),
    registrationUrl: pick(flags['registration-url'], 'registration', 'http', base?.registrationUrl),
    provisioningUrl: pick(flags['provisioning-url'], 'provisioning', 'http', base?.provisioningUrl),
    protocol,
    transport: plaintext
      ? { mode: 'plaintext' }
      : {
          mode: 'tls',
          ...((flags['tls-ca'] ?? base?.transport.caFile)
            ? { caFile: flags['tls-ca'] ?? base?.transport.caFile }
            : {}),
        },
  };
}

/** A mistake in how the agent was called (exit status 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
