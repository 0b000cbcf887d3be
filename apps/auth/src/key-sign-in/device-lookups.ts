/**
 * What key sign-in needs to know about devices (registration's GetDevice,
 * GetTenantCaCertificate) and user keys (provisioning's GetCredential), over
 * gRPC, cached in memory. The cache is only used while this instance's event
 * listener is live: every `device.*` and `credential.*` event drops the
 * entries it is about (a revoked key or a disabled device is refused as soon
 * as its event arrives — well under a second), and while the listener is not
 * live (starting, Kafka down, rebalancing) every lookup goes to the owner.
 * A lookup that cannot be answered is UNAVAILABLE: sign-in fails closed.
 */
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { type DecodedEvent, KafkaEventBus, Topics } from '@latchkey/events';
import { InternalCallSigner, InternalGrpcClient, SERVICE_LOGGER } from '@latchkey/service-kit';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import { AUTH_CONFIG, type AuthConfig } from '../config';

export type DeviceStatus = 'active' | 'disabled' | 'deleted';
export type CredentialStatus = 'active' | 'suspended' | 'revoked' | 'expired';
export type KeyStorage = 'none' | 'software' | 'tpm';

export interface DeviceView {
  tenantId: string;
  deviceId: string;
  status: DeviceStatus;
  certificatePem: string;
  /** SPKI PEM of the device's transport key (the session key is encrypted to it). */
  transportPublicKeyPem: string;
  transportKeyThumbprint: string;
}

export interface CredentialView {
  tenantId: string;
  credentialId: string;
  userId: string;
  deviceId: string;
  publicKeyJwk: JWK;
  algorithm: string;
  attestationLevel: KeyStorage;
  status: CredentialStatus;
  expiresAt: Date | null;
}

const DEVICE_STATUS: Record<string, DeviceStatus> = {
  DEVICE_STATUS_ACTIVE: 'active',
  DEVICE_STATUS_DISABLED: 'disabled',
  DEVICE_STATUS_DELETED: 'deleted',
};
const CREDENTIAL_STATUS: Record<string, CredentialStatus> = {
  CREDENTIAL_STATUS_ACTIVE: 'active',
  CREDENTIAL_STATUS_SUSPENDED: 'suspended',
  CREDENTIAL_STATUS_REVOKED: 'revoked',
  CREDENTIAL_STATUS_EXPIRED: 'expired',
};
const KEY_STORAGE: Record<string, KeyStorage> = {
  ATTESTATION_LEVEL_NONE: 'none',
  ATTESTATION_LEVEL_SOFTWARE: 'software',
  ATTESTATION_LEVEL_TPM: 'tpm',
};

const MAX_ENTRIES = 100_000;

/** A bounded TTL map that refuses writes started before the last invalidation. */
export class LookupCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  /** Bumped by every invalidation: a lookup started before it must not be stored. */
  private epoch = 0;
  private live = false;

  constructor(private readonly ttlMs: number) {}

  get generation(): number {
    return this.epoch;
  }

  setLive(live: boolean): void {
    if (!live) this.clear();
    this.live = live;
  }

  get(key: string, now = Date.now()): T | undefined {
    if (!this.live) return undefined;
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    if (hit.until <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  /** Stores `value` unless an invalidation happened since `generation` was read. */
  set(key: string, value: T, generation: number, now = Date.now()): void {
    if (!this.live || generation !== this.epoch) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { value, until: now + this.ttlMs });
  }

  delete(key: string): void {
    this.epoch++;
    this.entries.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.entries.clear();
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

function toDate(ts: unknown): Date | null {
  const t = ts as { seconds?: string | number; nanos?: number } | null | undefined;
  if (!t || t.seconds === undefined) return null;
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}

@Injectable()
export class DeviceLookups implements OnModuleDestroy {
  private readonly registration: InternalGrpcClient;
  private readonly provisioning: InternalGrpcClient;
  readonly devices: LookupCache<DeviceView>;
  readonly credentials: LookupCache<CredentialView>;
  readonly cas: LookupCache<string>;
  private listenerLive = false;
  /** Lookups in flight, shared by concurrent callers (one gRPC call per key at a time). */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(
    @Inject(AUTH_CONFIG) config: AuthConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    @Inject(InternalCallSigner) signer: InternalCallSigner,
  ) {
    const common = { timeoutMs: config.LOOKUP_TIMEOUT_MS, signer };
    this.registration = new InternalGrpcClient('registration', {
      ...common,
      address: config.REGISTRATION_GRPC_ADDRESS,
      unavailableReason: 'REGISTRATION_UNAVAILABLE',
      unavailableMessage: 'cannot check the device now; retry later',
    });
    this.provisioning = new InternalGrpcClient('provisioning', {
      ...common,
      address: config.PROVISIONING_GRPC_ADDRESS,
      unavailableReason: 'PROVISIONING_UNAVAILABLE',
      unavailableMessage: 'cannot check the key now; retry later',
    });
    const ttl = config.LOOKUP_CACHE_TTL_SECONDS * 1000;
    this.devices = new LookupCache(ttl);
    this.credentials = new LookupCache(ttl);
    this.cas = new LookupCache(ttl);
  }

  /** Starts the invalidation listener (never blocks start-up; retried until it runs). */
  listen(bus: KafkaEventBus, groupIdPrefix: string): void {
    const start = async (attempt: number): Promise<void> => {
      try {
        await bus.startListener({
          groupIdPrefix,
          topics: [Topics.device, Topics.credential],
          onLive: (live) => this.setLive(live),
          onEvent: (event) => this.invalidate(event),
        });
      } catch (err) {
        this.logger.warn(
          { err: (err as Error).message, attempt },
          'lookup listener failed; retrying',
        );
        setTimeout(() => void start(attempt + 1), Math.min(250 * 2 ** attempt, 5000)).unref();
      }
    };
    void start(0);
  }

  setLive(live: boolean): void {
    if (live !== this.listenerLive)
      this.logger.info({ live }, live ? 'lookup cache on' : 'lookup cache off (listener not live)');
    this.listenerLive = live;
    for (const c of [this.devices, this.credentials, this.cas]) c.setLive(live);
  }

  /** Drops what `event` is about; an event it cannot read drops everything. */
  invalidate(event: DecodedEvent | null): void {
    const data = (event?.data ?? null) as Record<string, unknown> | null;
    const tenantId = data && str(data.tenantId);
    // A lookup already under way may have read the old state: later callers start a new one.
    if (!event || !tenantId) {
      this.devices.clear();
      this.credentials.clear();
      this.inFlight.clear();
      return;
    }
    const deviceId = str(data.deviceId);
    const credentialId = str(data.credentialId);
    if (deviceId) {
      this.devices.delete(`${tenantId}/${deviceId}`);
      this.inFlight.delete(`d:${tenantId}/${deviceId}`);
    }
    if (credentialId) {
      this.credentials.delete(`${tenantId}/${credentialId}`);
      this.inFlight.delete(`c:${tenantId}/${credentialId}`);
    }
    // A device change (disable, delete) also ends what its keys may do.
    if (event.type.startsWith('dev.latchkey.device.') && !credentialId) {
      this.credentials.clear();
      for (const k of this.inFlight.keys()) if (k.startsWith('c:')) this.inFlight.delete(k);
    }
  }

  private shared<T>(key: string, load: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key) as Promise<T> | undefined;
    if (running) return running;
    const p = load().finally(() => {
      if (this.inFlight.get(key) === p) this.inFlight.delete(key);
    });
    this.inFlight.set(key, p);
    return p;
  }

  async device(tenantId: string, deviceId: string): Promise<DeviceView | null> {
    const key = `${tenantId}/${deviceId}`;
    return (
      this.devices.get(key) ??
      this.shared(`d:${key}`, () => this.loadDevice(key, tenantId, deviceId))
    );
  }

  private async loadDevice(key: string, tenantId: string, deviceId: string) {
    const gen = this.devices.generation;
    const res = await this.registration.call('GetDevice', { tenantId, deviceId });
    const d = res?.device as Record<string, unknown> | undefined;
    if (!d || str(d.tenantId) !== tenantId) return null;
    const view: DeviceView = {
      tenantId,
      deviceId: str(d.deviceId),
      status: DEVICE_STATUS[str(d.status)] ?? 'deleted',
      certificatePem: str(d.certificatePem),
      transportPublicKeyPem: str(d.transportPublicKey),
      transportKeyThumbprint: str(d.transportKeyThumbprint),
    };
    this.devices.set(key, view, gen);
    return view;
  }

  async tenantCaCertificate(tenantId: string): Promise<string | null> {
    return this.cas.get(tenantId) ?? this.shared(`ca:${tenantId}`, () => this.loadCa(tenantId));
  }

  private async loadCa(tenantId: string) {
    const gen = this.cas.generation;
    const res = await this.registration.call('GetTenantCaCertificate', { tenantId });
    const pem = str(res?.certificatePem);
    if (!pem) return null;
    this.cas.set(tenantId, pem, gen);
    return pem;
  }

  async credential(tenantId: string, credentialId: string): Promise<CredentialView | null> {
    const key = `${tenantId}/${credentialId}`;
    return (
      this.credentials.get(key) ??
      this.shared(`c:${key}`, () => this.loadCredential(key, tenantId, credentialId))
    );
  }

  private async loadCredential(key: string, tenantId: string, credentialId: string) {
    const gen = this.credentials.generation;
    const res = await this.provisioning.call('GetCredential', { tenantId, credentialId });
    const c = res?.credential as Record<string, unknown> | undefined;
    if (!c || str(c.tenantId) !== tenantId) return null;
    let jwk: JWK;
    try {
      jwk = JSON.parse(str(c.publicKeyJwk)) as JWK;
      if (typeof jwk?.kty !== 'string') return null;
    } catch {
      return null;
    }
    const view: CredentialView = {
      tenantId,
      credentialId: str(c.credentialId),
      userId: str(c.userId),
      deviceId: str(c.deviceId),
      publicKeyJwk: jwk,
      algorithm: str(c.algorithm),
      attestationLevel: KEY_STORAGE[str(c.attestationLevel)] ?? 'none',
      status: CREDENTIAL_STATUS[str(c.status)] ?? 'revoked',
      expiresAt: toDate(c.expireTime),
    };
    this.credentials.set(key, view, gen);
    return view;
  }

  onModuleDestroy(): void {
    this.registration.close();
    this.provisioning.close();
  }
}
