/**
 * The HTTPS JSON transport against a local stand-in server (the services do not
 * serve TLS themselves; the e2e journey covers the real routes in plaintext):
 * TLS with the CA of --tls-ca, the OAuth token answer mapped to the RPC's
 * response, problem+json refusals and outages as the same ServiceCallError
 * (and the same message) as gRPC.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createServer as createPlainServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { explain } from '../main';
import { endpointsFrom } from './endpoints';
import { ServiceCallError } from './service-clients';
import { httpsServiceClient } from './https-client';

let dir: string;
let server: Server;
let port: number;
const seen: { method?: string; url?: string; body: string; authorization?: string }[] = [];
let answer: (req: IncomingMessage, res: ServerResponse) => void;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agent-https-'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'],
      ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
    ],
    { stdio: 'pipe' },
  );
  server = createServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({
          method: req.method,
          url: req.url,
          body,
          authorization: req.headers.authorization,
        });
        answer(req, res);
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => (seen.length = 0));

const endpoints = (flags: Record<string, string | boolean> = {}) =>
  endpointsFrom({
    transport: 'https',
    'auth-url': `https://127.0.0.1:${port}`,
    'tls-ca': join(dir, 'cert.pem'),
    ...flags,
  });

const json =
  (code: number, body: object, type = 'application/json') =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, { 'content-type': type }).end(JSON.stringify(body));
  };

describe('the HTTPS JSON transport', () => {
  it('calls the route of the RPC over TLS with the CA of --tls-ca', async () => {
    answer = json(201, { nonce: 'n-1', expireTime: '2026-01-01T00:00:00.000Z' });
    const auth = httpsServiceClient('auth', endpoints());
    const res = await auth.call('GetNonce', {
      tenantId: 't',
      deviceId: 'd',
      purpose: 'NONCE_PURPOSE_SIGN_IN',
    });
    expect(res).toEqual({ nonce: 'n-1', expireTime: '2026-01-01T00:00:00.000Z' });
    expect(seen).toEqual([
      {
        method: 'POST',
        url: '/v1/nonces',
        body: JSON.stringify({ tenantId: 't', deviceId: 'd', purpose: 'NONCE_PURPOSE_SIGN_IN' }),
        authorization: undefined,
      },
    ]);
  });

  it('refuses a server its CA does not vouch for, as an unreachable server', async () => {
    answer = json(201, {});
    const auth = httpsServiceClient(
      'auth',
      endpointsFrom({ transport: 'https', 'auth-url': `https://127.0.0.1:${port}` }),
    );
    const err = (await auth.call('GetNonce', {}).catch((e: unknown) => e)) as ServiceCallError;
    expect(err).toBeInstanceOf(ServiceCallError);
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.detail).toMatch(/self-signed certificate/);
    expect(seen).toEqual([]);
    expect(explain(err)).toEqual({
      message: expect.stringMatching(
        /^cannot reach the auth service: https:\/\/127\.0\.0\.1:\d+: self-signed/,
      ),
      exitCode: 3,
    });
  });

  it('maps the OAuth token answer to the tokens of SignInWithKey, and sends the bearer grant', async () => {
    answer = json(200, {
      token_type: 'Bearer',
      access_token: 'at',
      expires_in: 600,
      id_token: 'it',
      refresh_token: 'prt',
      refresh_token_expires_in: 3600,
      session_id: 's-1',
      session_key_jwe: 'jwe',
    });
    const before = Date.now();
    const res = (await httpsServiceClient('auth', endpoints()).call('SignInWithKey', {
      request: 'jws',
    })) as { tokens: Record<string, string>; sessionKeyJwe: string };
    expect(JSON.parse(seen[0]!.body)).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      request: 'jws',
    });
    expect(res.sessionKeyJwe).toBe('jwe');
    expect(res.tokens).toMatchObject({
      accessToken: 'at',
      idToken: 'it',
      refreshToken: 'prt',
      sessionId: 's-1',
    });
    const at = Date.parse(res.tokens.accessTokenExpireTime!);
    expect(at).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    expect(at).toBeLessThanOrEqual(Date.now() + 600_000);
  });

  it('turns a problem+json refusal into the ServiceCallError gRPC gives, with the same message', async () => {
    answer = json(
      401,
      {
        type: 'x',
        title: 'unauthenticated',
        status: 401,
        detail: 'sign-in failed',
        reason: 'SIGN_IN_FAILED',
      },
      'application/problem+json',
    );
    const err = (await httpsServiceClient('auth', endpoints())
      .call('SignInWithKey', { request: 'jws' })
      .catch((e: unknown) => e)) as ServiceCallError;
    expect(err).toMatchObject({
      service: 'auth',
      method: 'SignInWithKey',
      code: status.UNAUTHENTICATED,
      reason: 'SIGN_IN_FAILED',
      detail: 'sign-in failed',
    });
    expect(explain(err).message).toMatch(/sign-in refused: the key may be revoked/);
    expect(explain(err).exitCode).toBe(1);
  });

  it('sends the access token, query filters and path ids of admin-scoped reads', async () => {
    answer = json(200, { credentials: [] });
    await httpsServiceClient(
      'provisioning',
      endpoints({ 'provisioning-url': `https://127.0.0.1:${port}/` }),
    ).call('ListCredentials', { tenantId: 't/1', deviceId: 'd 1', status: '' }, 'tok');
    expect(seen[0]).toMatchObject({
      method: 'GET',
      url: '/v1/tenants/t%2F1/credentials?deviceId=d+1',
      body: '',
      authorization: 'Bearer tok',
    });
  });

  it("sends a device's self-read as GET /v1/devices/self with its device assertion in authorization", async () => {
    answer = json(200, { device: { deviceId: 'd', status: 'DEVICE_STATUS_DISABLED' } });
    const res = await httpsServiceClient(
      'registration',
      endpoints({ 'registration-url': `https://127.0.0.1:${port}` }),
    ).call('GetSelfDevice', { deviceAssertion: 'h.p.s' });
    expect(res).toEqual({ device: { deviceId: 'd', status: 'DEVICE_STATUS_DISABLED' } });
    expect(seen).toEqual([
      { method: 'GET', url: '/v1/devices/self', body: '', authorization: 'DeviceAssertion h.p.s' },
    ]);
  });

  it('reports a closed port as an unreachable server (exit status 3)', async () => {
    const closed = createPlainServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const err = (await httpsServiceClient(
      'registration',
      endpointsFrom({
        transport: 'https',
        plaintext: true,
        'registration-url': `http://127.0.0.1:${free}`,
      }),
    )
      .call('RegisterDevice', {})
      .catch((e: unknown) => e)) as ServiceCallError;
    expect(err.unreachable).toBe(true);
    expect(explain(err)).toEqual({
      message: expect.stringMatching(/^cannot reach the registration service: .*ECONNREFUSED/),
      exitCode: 3,
    });
  });

  it('refuses an unknown transport as a usage error', () => {
    expect(() => endpointsFrom({ transport: 'smtp' })).toThrow('--transport is grpc or https');
    expect(endpointsFrom({}).protocol).toBe('grpc');
    // What registration stored stays unless a flag changes it.
    expect(endpointsFrom({}, endpointsFrom({ transport: 'https' })).protocol).toBe('https');
  });
});
