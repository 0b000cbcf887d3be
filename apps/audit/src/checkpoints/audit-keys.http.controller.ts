/** Publishes the audit public keys (JWKS) so that anyone can verify checkpoints without the database. */
import { Controller, Get, Header } from '@nestjs/common';
import { AuditKeyring } from './audit-keyring.service';

@Controller('.well-known')
export class AuditKeysHttpController {
  constructor(private readonly keyring: AuditKeyring) {}

  @Get('audit-keys.json')
  @Header('cache-control', 'public, max-age=300')
  async keys() {
    return { keys: await this.keyring.publicJwks() };
  }
}
