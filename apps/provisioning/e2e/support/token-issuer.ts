/**
 * A stand-in for auth's token issuance in tests: an ES256 key, a JWKS endpoint
 * on 127.0.0.1, and access tokens with chosen claims (amr, auth_time, roles)
 * — including stale or single-factor ones that a real sign-in would not give.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type KeyLike, SignJWT } from 'jose';

export interface TokenClaims {
  sub: string;
  tid: string;
  roles?: string[];
  amr?: string[];
  /** Seconds since the epoch; default: now. */
  authTime?: number;
  did?: string;
}

export class TestTokenIssuer {
  private constructor(
    private readonly server: Server,
    private readonly privateKey: KeyLike,
    private readonly kid: string,
    readonly issuer: string,
  ) {}

  static async start(): Promise<TestTokenIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const kid = randomUUID();
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
    const server = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new TestTokenIssuer(server, privateKey, kid, `http://127.0.0.1:${port}`);
  }

  get jwksUrl(): string {
    return `${this.issuer}/.well-known/jwks.json`;
  }

  async token(c: TokenClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      tid: c.tid,
      roles: c.roles ?? ['user'],
      scope: '',
      amr: c.amr ?? ['pwd', 'otp'],
      auth_time: c.authTime ?? now,
      ...(c.did ? { did: c.did } : {}),
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience('latchkey')
      .setSubject(c.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
