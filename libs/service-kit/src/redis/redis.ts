/**
 * One way to connect to Redis — a single server, a Sentinel-managed master or a
 * Redis Cluster, chosen by REDIS_MODE — that fails fast when Redis is down and
 * reconnects by itself. Code that uses Redis takes a `RedisClient` and must
 * work on all three: one key per command, or keys that share a {hash tag}.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { ConfigError, type RedisConfig } from '../config/config';

export type RedisClient = Redis | Cluster;

/**
 * Fail closed: no silent queueing of commands while disconnected. Commands issued in
 * the same event-loop turn go out in one write (auto-pipelining): a socket write is
 * the dearest part of a Redis command on a busy service, and the nonce store, the
 * rate limits and the revocation cache issue many small commands at once.
 */
const COMMON: RedisOptions = {
  enableOfflineQueue: false,
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  commandTimeout: 2000,
};
const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000);

/** What `createRedisFromConfig` builds: the mode and the exact ioredis arguments. */
export type RedisConnection =
  | { mode: 'standalone'; options: RedisOptions }
  | { mode: 'sentinel'; options: RedisOptions }
  | { mode: 'cluster'; nodes: { host: string; port: number }[]; options: ClusterOptions };

const hostPort = (s: string) => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
};

type ReadFile = (path: string) => Buffer;

function readPem(variable: string, path: string, read: ReadFile): Buffer {
  try {
    return read(path);
  } catch (err) {
    throw new ConfigError([
      { variable, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}` },
    ]);
  }
}

/** TLS options from REDIS_TLS*, or undefined when TLS is off. */
function tlsOptions(config: RedisConfig, read: ReadFile): ConnectionOptions | undefined {
  const on = config.REDIS_TLS || /^rediss:/.test(config.REDIS_URL ?? '');
  if (!on) return undefined;
  const tls: ConnectionOptions = {};
  if (config.REDIS_TLS_CA_FILE)
    tls.ca = readPem('REDIS_TLS_CA_FILE', config.REDIS_TLS_CA_FILE, read);
  if (config.REDIS_TLS_CERT_FILE)
    tls.cert = readPem('REDIS_TLS_CERT_FILE', config.REDIS_TLS_CERT_FILE, read);
  if (config.REDIS_TLS_KEY_FILE)
    tls.key = readPem('REDIS_TLS_KEY_FILE', config.REDIS_TLS_KEY_FILE, read);
  if (config.REDIS_TLS_SERVERNAME) tls.servername = config.REDIS_TLS_SERVERNAME;
  return tls;
}

/** Maps a validated Redis config to ioredis arguments (pure but for reading the PEM files). */
export function redisConnection(
  config: RedisConfig,
  read: ReadFile = (p) => readFileSync(p),
): RedisConnection {
  const tls = tlsOptions(config, read);
  const auth = {
    ...(config.REDIS_USERNAME ? { username: config.REDIS_USERNAME } : {}),
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
  };
  switch (config.REDIS_MODE) {
    case 'standalone': {
      const url = new URL(config.REDIS_URL!);
      const fromUrl = {
        ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      };
      return {
        mode: 'standalone',
        options: {
          ...COMMON,
          retryStrategy,
          host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: url.port ? Number(url.port) : 6379,
          db: Number(url.pathname.slice(1) || 0),
          ...fromUrl,
          ...auth,
          ...(tls ? { tls } : {}),
        },
      };
    }
    case 'sentinel':
      return {
        mode: 'sentinel',
        options: {
          ...COMMON,
          ...auth,
          sentinels: config.REDIS_SENTINELS!.map(hostPort),
          name: config.REDIS_SENTINEL_MASTER_NAME!,
          db: config.REDIS_DATABASE ?? 0,
          ...(config.REDIS_SENTINEL_PASSWORD
            ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD }
            : {}),
          // The Sentinels are asked again for the master after a failover.
          sentinelRetryStrategy: retryStrategy,
          ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        },
      };
    case 'cluster':
      return {
        mode: 'cluster',
        nodes: config.REDIS_CLUSTER_NODES!.map(hostPort),
        options: {
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          clusterRetryStrategy: retryStrategy,
          // A moved slot or a failover: follow it, but give up quickly like a single server.
          maxRedirections: 16,
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 200,
          slotsRefreshTimeout: 2000,
          redisOptions: {
            maxRetriesPerRequest: 1,
            connectTimeout: 2000,
            commandTimeout: 2000,
            ...auth,
            ...(tls ? { tls } : {}),
          },
          // Keep TLS hostnames as given: resolving them first would check certificates against IPs.
          ...(tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
        },
      };
  }
}

/** A client for the configured Redis (standalone, Sentinel or Cluster). */
export function createRedisFromConfig(config: RedisConfig, read?: ReadFile): RedisClient {
  const c = redisConnection(config, read);
  switch (c.mode) {
    case 'standalone':
    case 'sentinel':
      return new Redis(c.options);
    case 'cluster':
      return new Cluster(c.nodes, c.options);
  }
}

export type { Cluster, Redis };
