/**
 * A stand-in token issuer for tests of services that validate access tokens:
 * an ES256 key, its JWKS served on 127.0.0.1, and tokens with the claims auth
 * issues (sub tid roles scope amr auth_time). Point a service instance at it
 * with `issuer.env()` (AUTH_ISSUER, AUTH_JWKS_URL).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { Metadata } from '@grpc/grpc-js';

export interface TestTokenClaims {
  tenantId: string;
  roles: ('user' | 'admin' | 'operator' | 'soc')[];
  subject?: string;
  audience?: string;
  expiresInSeconds?: number;
}

export class TestTokenIssuer {
  private constructor(
    private readonly server: Server,
    private readonly key: KeyLike,
    private readonly kid: string,
    readonly issuer: string,
  ) {}

  static async start(): Promise<TestTokenIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const kid = randomUUID();
    const jwks = JSON.stringify({
      keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }],
    });
    const server = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new TestTokenIssuer(server, privateKey, kid, `http://127.0.0.1:${port}`);
  }

  get jwksUrl(): string {
    return `${this.issuer}/.well-known/jwks.json`;
  }

  /** Environment that makes a service trust this issuer. */
  env(): Record<string, string> {
    return { AUTH_ISSUER: this.issuer, AUTH_JWKS_URL: this.jwksUrl, AUTH_AUDIENCE: 'latchkey' };
  }

  async token(c: TestTokenClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      tid: c.tenantId,
      roles: c.roles,
      scope: '',
      amr: ['pwd', 'otp'],
      auth_time: now,
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience(c.audience ?? 'latchkey')
      .setSubject(c.subject ?? randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + (c.expiresInSeconds ?? 600))
      .setJti(randomUUID())
      .sign(this.key);
  }

  /** gRPC metadata carrying a bearer token. */
  async metadata(c: TestTokenClaims): Promise<Metadata> {
    const md = new Metadata();
    md.set('authorization', `Bearer ${await this.token(c)}`);
    return md;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
