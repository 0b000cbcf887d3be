/** What every command works with: its flags, the keystore, the terminal, the services and the output. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SoftwareKeystore } from '../keystore/software-keystore';
import { type EndpointFlags, type Endpoints, endpointsFrom } from '../server/endpoints';
import { ServiceClients } from '../server/service-clients';
import { Terminal } from './terminal';

/** The device as the agent stored it at registration (device.json). */
export interface DeviceState {
  version: 1;
  tenantId: string;
  deviceId: string;
  displayName: string;
  storage: 'software' | 'tpm';
  endpoints: Endpoints;
  /** The auth issuer URL, discovered on first use. */
  issuer?: string;
  certificatePem: string;
  certificateChainPem: string[];
  registeredAt: string;
}

/** The key session (session.json): the PRT and the session key live only here. */
export interface SessionState {
  sessionId: string;
  userId: string;
  refreshToken: string;
  refreshTokenExpireTime: string;
  accessToken: string;
  accessTokenExpireTime: string;
  idToken: string;
  /** The 32-byte session key, base64url. */
  sessionKey: string;
  obtainedAt: string;
  refreshedAt?: string;
}

export type Flags = EndpointFlags & Record<string, string | boolean | undefined>;

export class AgentContext {
  readonly keystore: SoftwareKeystore;
  private clientsCache?: ServiceClients;

  constructor(
    readonly flags: Flags,
    readonly terminal: Terminal,
    readonly out: (text: string) => void,
  ) {
    const dir =
      (flags.keystore as string | undefined) ??
      process.env.LATCHKEY_AGENT_HOME ??
      join(homedir(), '.latchkey-agent');
    this.keystore = new SoftwareKeystore(dir);
  }

  get json(): boolean {
    return Boolean(this.flags.json);
  }

  device(): DeviceState {
    return this.keystore.loadDevice<DeviceState>();
  }

  /** The registered device's endpoints, with any flag given on this call on top. */
  endpoints(): Endpoints {
    const stored = this.keystore.has('device') ? this.device().endpoints : undefined;
    return endpointsFrom(this.flags, stored);
  }

  clients(endpoints = this.endpoints()): ServiceClients {
    this.clientsCache ??= new ServiceClients(endpoints);
    return this.clientsCache;
  }

  /** Prints a result: JSON with --json, else the human lines. */
  result(json: unknown, human: string): void {
    this.out(
      this.json
        ? `${JSON.stringify(json, null, 2)}\n`
        : human.endsWith('\n')
          ? human
          : `${human}\n`,
    );
  }

  close(): void {
    this.clientsCache?.close();
    this.terminal.close();
  }
}
