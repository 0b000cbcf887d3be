/**
 * The errors a service sees while PostgreSQL restarts or Redis is down, in the forms the
 * real libraries make them (ioredis with the services' options against a closed port and a
 * hung server, pg's classes and
 * its client against a socket that closes, Prisma's error classes wrapping a driver-adapter
 * error as the client engine does): each must leave as UNAVAILABLE / HTTP 503 with the
 * reason DEPENDENCY_UNAVAILABLE and without its message.
 */
import { createServer, type Server } from 'node:net';
import { status } from '@grpc/grpc-js';
import { type ArgumentsHost, Logger } from '@nestjs/common';
import {
  PrismaClientKnownRequestError,
  PrismaClientUnknownRequestError,
} from '@prisma/client/runtime/client';
import { DriverAdapterError } from '@prisma/driver-adapter-utils';
import { Redis, type RedisOptions, ReplyError } from 'ioredis';
import { MaxRetriesPerRequestError } from 'ioredis/built/errors';
import { Client, DatabaseError } from 'pg';
import { lastValueFrom, type Observable } from 'rxjs';
import { loadConfig, redisConfigShape } from '../config/config';
import { redisConnection } from '../redis/redis';
import { toDomainError } from './domain-error';
import { DomainErrorFilter } from './exception-filter';

const clientVersion = '6.19.3';

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** pg's error for a server message, as its protocol parser makes it. */
function pgServerError(code: string, message: string, severity = 'FATAL'): DatabaseError {
  return Object.assign(new DatabaseError(message, message.length, 'error'), { code, severity });
}

/** What `@prisma/adapter-pg` throws for a pg server error (convertDriverError, kind postgres). */
function adapterError(code: string, message: string): DriverAdapterError {
  return new DriverAdapterError({
    kind: 'postgres',
    code,
    severity: 'FATAL',
    message,
    originalCode: code,
    originalMessage: message,
  } as never);
}

/** The real errors, made once: each needs a socket. */
const made: Record<string, unknown> = {};
let closing: Server;
let silent: Server;

/** ioredis options of the services (createRedisFromConfig) for a standalone Redis on `port`. */
function serviceRedisOptions(port: number): RedisOptions {
  const config = loadConfig(redisConfigShape, { REDIS_URL: `redis://127.0.0.1:${port}` });
  const connection = redisConnection(config);
  if (connection.mode !== 'standalone') throw new Error('expected a standalone connection');
  // ioredis leaves a command's timer running when it rejects the command at once: without a
  // timeout here jest need not wait for those timers (the timeout is made below on its own).
  return { ...connection.options, commandTimeout: undefined };
}

beforeAll(async () => {
  const port = await closedPort();

  // The services' client (offline queue off) while Redis is down.
  const service = new Redis(serviceRedisOptions(port));
  service.on('error', () => undefined);
  made.redisOffline = await service.get('k').catch((e: unknown) => e);
  const ended = new Promise((r) => service.once('end', r));
  service.disconnect();
  await ended;
  // A command issued after the client was closed.
  made.redisClosed = await service.get('k').catch((e: unknown) => e);

  // A command that waited for a connection that never came (offline queue on; quick retries,
  // and no 2 s timer left behind by disconnect() for a socket that is already closed).
  const queued = new Redis({
    ...serviceRedisOptions(port),
    enableOfflineQueue: true,
    retryStrategy: () => 20,
    disconnectTimeout: 10,
  });
  queued.on('error', () => undefined);
  made.redisMaxRetries = await queued.get('k').catch((e: unknown) => e);
  queued.disconnect();

  // A Redis that accepts the connection and never answers (hung): the command times out.
  silent = createServer((socket) => socket.resume());
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const hung = new Redis({
    ...serviceRedisOptions((silent.address() as { port: number }).port),
    enableReadyCheck: false,
    commandTimeout: 100,
  });
  hung.on('error', () => undefined);
  if (hung.status !== 'ready') await new Promise((r) => hung.once('ready', r));
  made.redisTimedOut = await hung.get('k').catch((e: unknown) => e);
  hung.disconnect();

  // pg against a closed port, and against a server that closes the socket at once.
  made.pgRefused = await new Client({ host: '127.0.0.1', port }).connect().catch((e: unknown) => e);
  closing = createServer((socket) => socket.destroy());
  await new Promise<void>((r) => closing.listen(0, '127.0.0.1', r));
  const closingPort = (closing.address() as { port: number }).port;
  made.pgTerminated = await new Client({ host: '127.0.0.1', port: closingPort })
    .connect()
    .catch((e: unknown) => e);
});

afterAll(async () => {
  for (const server of [closing, silent]) {
    if (server) await new Promise((r) => server.close(r));
  }
});

/** Each form: a name and the error (a function: some are made in beforeAll). */
const forms: [string, () => unknown][] = [
  // ioredis
  ['ioredis: command while disconnected (offline queue off)', () => made.redisOffline],
  ['ioredis: command on a closed connection', () => made.redisClosed],
  ['ioredis: MaxRetriesPerRequestError (made by the client)', () => made.redisMaxRetries],
  ['ioredis: MaxRetriesPerRequestError (constructed)', () => new MaxRetriesPerRequestError(1)],
  ['ioredis: in-flight command, connection closed', () => new Error('Connection is closed.')],
  ['ioredis: command timed out (made by the client, Redis hung)', () => made.redisTimedOut],
  [
    'Redis: LOADING reply after a restart',
    () => new ReplyError('LOADING Redis is loading the dataset in memory'),
  ],
  // pg (node-postgres)
  ['pg: ECONNREFUSED (made by the client)', () => made.pgRefused],
  ['pg: Connection terminated unexpectedly (made by the client)', () => made.pgTerminated],
  ['pg: Connection terminated', () => new Error('Connection terminated')],
  [
    'pg: client no longer queryable',
    () => new Error('Client has encountered a connection error and is not queryable'),
  ],
  ['pg: client closed', () => new Error('Client was closed and is not queryable')],
  ['pg-pool: no connection in time', () => new Error('timeout exceeded when trying to connect')],
  [
    'pg: 57P01 admin_shutdown',
    () => pgServerError('57P01', 'terminating connection due to administrator command'),
  ],
  [
    'pg: 57P02 crash_shutdown',
    () => pgServerError('57P02', 'terminating connection due to crash of another server process'),
  ],
  [
    'pg: 57P03 cannot_connect_now (starting up)',
    () => pgServerError('57P03', 'the database system is starting up'),
  ],
  [
    'pg: 57P03 cannot_connect_now (shutting down)',
    () => pgServerError('57P03', 'the database system is shutting down'),
  ],
  ['pg: 08000 connection_exception', () => pgServerError('08000', 'connection exception')],
  ['pg: 08003 connection_does_not_exist', () => pgServerError('08003', 'no connection')],
  ['pg: 08006 connection_failure', () => pgServerError('08006', 'connection failure')],
  [
    'pg: ECONNRESET',
    () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }),
  ],
  [
    'a pg error as the cause of another',
    () =>
      new Error('chain append failed', {
        cause: pgServerError('57P01', 'terminating connection due to administrator command'),
      }),
  ],
  // Prisma 6 (client engine + @prisma/adapter-pg)
  [
    'Prisma P2010 (raw query) wrapping a 57P01 driver-adapter error in meta',
    () =>
      new PrismaClientKnownRequestError(
        'Raw query failed. Code: `57P01`. Message: `terminating connection due to administrator command`',
        {
          code: 'P2010',
          clientVersion,
          meta: {
            driverAdapterError: adapterError(
              '57P01',
              'terminating connection due to administrator command',
            ),
          },
        },
      ),
  ],
  [
    'Prisma P2010 wrapping a 57P03 driver-adapter error, code only in meta',
    () =>
      new PrismaClientKnownRequestError('Raw query failed.', {
        code: 'P2010',
        clientVersion,
        meta: { driverAdapterError: adapterError('57P03', 'the database system is starting up') },
      }),
  ],
  [
    'Prisma P1017 (server closed the connection)',
    () =>
      new PrismaClientKnownRequestError('Server has closed the connection.', {
        code: 'P1017',
        clientVersion,
        meta: { driverAdapterError: new DriverAdapterError({ kind: 'ConnectionClosed' }) },
      }),
  ],
  [
    'Prisma P1001 (cannot reach the server)',
    () =>
      new PrismaClientKnownRequestError("Can't reach database server at 127.0.0.1:5432", {
        code: 'P1001',
        clientVersion,
        meta: {
          driverAdapterError: new DriverAdapterError({
            kind: 'DatabaseNotReachable',
            host: '127.0.0.1',
            port: 5432,
          }),
        },
      }),
  ],
  [
    'an AggregateError whose errors are refused connections (IPv6 and IPv4)',
    () =>
      new AggregateError(
        [
          Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' }),
          Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
            code: 'ECONNREFUSED',
          }),
        ],
        'all addresses refused',
      ),
  ],
  [
    'Prisma: a bare DriverAdapterError (57P01)',
    () => adapterError('57P01', 'terminating connection due to administrator command'),
  ],
  [
    'PrismaClientUnknownRequestError carrying the pg text',
    () =>
      new PrismaClientUnknownRequestError(
        'Invalid `prisma.auditRecord.findFirst()` invocation: Connection terminated unexpectedly',
        { clientVersion },
      ),
  ],
  [
    'PrismaClientUnknownRequestError carrying the PostgreSQL text',
    () =>
      new PrismaClientUnknownRequestError(
        'Error in PostgreSQL connection: terminating connection due to administrator command',
        { clientVersion },
      ),
  ],
  [
    'Prisma P2028 (transaction could not start in time)',
    () =>
      new PrismaClientKnownRequestError('Transaction API error: Unable to start a transaction', {
        code: 'P2028',
        clientVersion,
      }),
  ],
];

/** Errors that are not outages: still INTERNAL (message hidden). */
const notOutages: [string, () => unknown][] = [
  ['pg: 23505 unique violation', () => pgServerError('23505', 'duplicate key value', 'ERROR')],
  [
    'Prisma P2002 unique constraint',
    () =>
      new PrismaClientKnownRequestError('Unique constraint failed on the fields: (`id`)', {
        code: 'P2002',
        clientVersion,
      }),
  ],
  [
    'Prisma P2010 wrapping a syntax error',
    () =>
      new PrismaClientKnownRequestError('Raw query failed. Code: `42601`.', {
        code: 'P2010',
        clientVersion,
        meta: { driverAdapterError: adapterError('42601', 'syntax error at or near "x"') },
      }),
  ],
  ['Redis: WRONGTYPE reply', () => new ReplyError('WRONGTYPE Operation against a key')],
  ['an error whose text merely starts like a Redis reply', () => new Error('Loading failed')],
  ['a plain bug', () => new TypeError("Cannot read properties of undefined (reading 'x')")],
];

/** What the one exception filter answers over HTTP and over gRPC for `exception`. */
async function answers(exception: unknown) {
  const http = { status: 0, type: '', body: '' };
  const res = {
    status(s: number) {
      http.status = s;
      return res;
    },
    type(t: string) {
      http.type = t;
      return res;
    },
    send(text: string) {
      http.body = text;
      return res;
    },
  };
  const filter = new DomainErrorFilter();
  filter.catch(exception, {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => ({ originalUrl: '/x' }), getResponse: () => res }),
  } as unknown as ArgumentsHost);
  const rpc = filter.catch(exception, { getType: () => 'rpc' } as unknown as ArgumentsHost);
  const grpc = await lastValueFrom(rpc as Observable<never>).catch(
    (s: { code: number; details: string; metadata: { get(k: string): unknown[] } }) => s,
  );
  return { http, grpc };
}

describe('dependency outages map to UNAVAILABLE', () => {
  let logged: jest.SpyInstance;
  beforeEach(() => {
    // The filter logs these (with their message); keep that out of the test output.
    logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => logged.mockRestore());

  it('the real errors were made as expected', () => {
    expect(made.redisOffline).toMatchObject({
      message: "Stream isn't writeable and enableOfflineQueue options is false",
    });
    expect(made.redisClosed).toMatchObject({ message: 'Connection is closed.' });
    expect(made.redisMaxRetries).toBeInstanceOf(MaxRetriesPerRequestError);
    expect(made.redisTimedOut).toMatchObject({ message: 'Command timed out' });
    expect(made.pgRefused).toMatchObject({ code: 'ECONNREFUSED' });
    expect(made.pgTerminated).toMatchObject({ message: 'Connection terminated unexpectedly' });
  });

  it.each(forms)('%s', async (_name, make) => {
    const err = make();
    // An error (those of Node's sockets come from another realm than jest's Error).
    expect(err).toHaveProperty('stack', expect.any(String));
    const mapped = toDomainError(err);
    expect({ kind: mapped.kind, reason: mapped.reason }).toEqual({
      kind: 'UNAVAILABLE',
      reason: 'DEPENDENCY_UNAVAILABLE',
    });

    const { http, grpc } = await answers(err);
    expect(http.status).toBe(503);
    expect(http.type).toBe('application/problem+json');
    const problem = JSON.parse(http.body) as Record<string, unknown>;
    expect(problem).toMatchObject({ status: 503, reason: 'DEPENDENCY_UNAVAILABLE' });
    expect(grpc.code).toBe(status.UNAVAILABLE);
    expect(grpc.metadata.get('latchkey-reason')).toEqual(['DEPENDENCY_UNAVAILABLE']);
    // The raw message never leaves the service.
    const raw = (err as Error).message;
    expect(http.body).not.toContain(raw);
    expect(grpc.details).not.toContain(raw);
  });

  it.each(notOutages)('not an outage, still INTERNAL: %s', async (_name, make) => {
    const err = make() as Error;
    expect(toDomainError(err).kind).toBe('INTERNAL');
    const { http, grpc } = await answers(err);
    expect(http.status).toBe(500);
    expect(grpc.code).toBe(status.INTERNAL);
    expect(http.body).not.toContain(err.message);
  });
});
