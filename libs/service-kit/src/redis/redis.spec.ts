import { Cluster, Redis } from 'ioredis';
import { loadConfig, redisConfigShape } from '../config/config';
import type { RedisOptions } from 'ioredis';
import { createRedisFromConfig, type RedisConnection, redisConnection } from './redis';

const config = (env: Record<string, string>) => loadConfig(redisConfigShape, env);
/** The options of a standalone or Sentinel connection (a Cluster's are checked on their own). */
const single = (c: RedisConnection): RedisOptions => {
  if (c.mode === 'cluster') throw new Error('expected a single-server connection');
  return c.options;
};
/** Stands in for the mounted Secret volumes: the file's content names the file. */
const files = (path: string) => {
  if (path.startsWith('/missing')) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return Buffer.from(`pem of ${path}`);
};

describe('redisConnection (config -> ioredis options)', () => {
  it('connects to one server from REDIS_URL, failing fast', () => {
    const c = redisConnection(config({ REDIS_URL: 'redis://cache.internal:6380/3' }), files);
    expect(c.mode).toBe('standalone');
    expect(c.options).toMatchObject({
      host: 'cache.internal',
      port: 6380,
      db: 3,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    expect(single(c).tls).toBeUndefined();
    expect(single(c).password).toBeUndefined();
  });

  it('takes REDIS_USERNAME/REDIS_PASSWORD over the URL credentials (no URL-encoding needed)', () => {
    const fromUrl = redisConnection(config({ REDIS_URL: 'redis://u:p%40ss@r:6379' }), files);
    expect(fromUrl.options).toMatchObject({ username: 'u', password: 'p@ss', port: 6379, db: 0 });
    const fromVars = redisConnection(
      config({
        REDIS_URL: 'redis://u:old@r:6379',
        REDIS_USERNAME: 'latchkey',
        REDIS_PASSWORD: 'p@ss/w:rd',
      }),
      files,
    );
    expect(fromVars.options).toMatchObject({ username: 'latchkey', password: 'p@ss/w:rd' });
  });

  it('turns TLS on for rediss:// or REDIS_TLS, with the CA, client certificate and server name', () => {
    const byScheme = redisConnection(config({ REDIS_URL: 'rediss://r:6380' }), files);
    expect(single(byScheme).tls).toEqual({});
    const c = redisConnection(
      config({
        REDIS_URL: 'redis://r:6380',
        REDIS_TLS: 'true',
        REDIS_TLS_CA_FILE: '/etc/latchkey/redis/ca.crt',
        REDIS_TLS_CERT_FILE: '/etc/latchkey/redis-client/tls.crt',
        REDIS_TLS_KEY_FILE: '/etc/latchkey/redis-client/tls.key',
        REDIS_TLS_SERVERNAME: 'redis.example.com',
      }),
      files,
    );
    expect(single(c).tls).toEqual({
      ca: Buffer.from('pem of /etc/latchkey/redis/ca.crt'),
      cert: Buffer.from('pem of /etc/latchkey/redis-client/tls.crt'),
      key: Buffer.from('pem of /etc/latchkey/redis-client/tls.key'),
      servername: 'redis.example.com',
    });
  });

  it('asks the Sentinels for the master, with TLS and passwords for both', () => {
    const c = redisConnection(
      config({
        REDIS_MODE: 'sentinel',
        REDIS_SENTINELS: 'sentinel-0:26379,sentinel-1:26379',
        REDIS_SENTINEL_MASTER_NAME: 'latchkey',
        REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
        REDIS_PASSWORD: 'redis-secret',
        REDIS_DATABASE: '2',
        REDIS_TLS: 'true',
        REDIS_TLS_CA_FILE: '/etc/latchkey/redis/ca.crt',
      }),
      files,
    );
    expect(c.mode).toBe('sentinel');
    const tls = { ca: Buffer.from('pem of /etc/latchkey/redis/ca.crt') };
    expect(c.options).toMatchObject({
      sentinels: [
        { host: 'sentinel-0', port: 26379 },
        { host: 'sentinel-1', port: 26379 },
      ],
      name: 'latchkey',
      db: 2,
      password: 'redis-secret',
      sentinelPassword: 'sentinel-secret',
      tls,
      sentinelTLS: tls,
      enableTLSForSentinelMode: true,
      enableOfflineQueue: false,
    });
  });

  it('builds a Cluster client from the seed nodes, with credentials and TLS on every node', () => {
    const c = redisConnection(
      config({
        REDIS_MODE: 'cluster',
        REDIS_CLUSTER_NODES: 'redis-0.redis:6379,redis-1.redis:6379',
        REDIS_PASSWORD: 'redis-secret',
        REDIS_TLS: 'true',
      }),
      files,
    );
    if (c.mode !== 'cluster') throw new Error(`expected cluster, got ${c.mode}`);
    expect(c.nodes).toEqual([
      { host: 'redis-0.redis', port: 6379 },
      { host: 'redis-1.redis', port: 6379 },
    ]);
    expect(c.options).toMatchObject({
      enableOfflineQueue: false,
      redisOptions: { password: 'redis-secret', tls: {}, maxRetriesPerRequest: 1 },
    });
    // With TLS, node names are not resolved first (certificates name hosts, not IPs).
    const looked: string[] = [];
    c.options.dnsLookup!('redis-0.redis', (err, address) => looked.push(`${err}:${address}`));
    expect(looked).toEqual(['null:redis-0.redis']);
  });

  it('names the variable of a PEM file it cannot read', () => {
    expect(() =>
      redisConnection(
        config({ REDIS_URL: 'rediss://r:6380', REDIS_TLS_CA_FILE: '/missing/ca.crt' }),
        files,
      ),
    ).toThrow(/REDIS_TLS_CA_FILE: cannot read \/missing\/ca.crt: ENOENT/);
  });
});

describe('createRedisFromConfig', () => {
  it('returns a Redis client or a Cluster client by REDIS_MODE, without connecting first', async () => {
    const single = createRedisFromConfig(config({ REDIS_URL: 'redis://127.0.0.1:1' }));
    const cluster = createRedisFromConfig(
      config({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: '127.0.0.1:1' }),
    );
    try {
      expect(single).toBeInstanceOf(Redis);
      expect(cluster).toBeInstanceOf(Cluster);
    } finally {
      single.disconnect();
      cluster.disconnect();
    }
  });
});
