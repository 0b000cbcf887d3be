/**
 * MFA tickets: what SignInWithPassword hands out after a correct password.
 * 32 random bytes, stored hashed in Redis with a short TTL, consumed once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { REDIS, type RedisClient } from '@latchkey/service-kit';
import { AUTH_CONFIG, type AuthConfig } from '../config';

export interface MfaTicket {
  tenantId: string;
  userId: string;
  username: string;
  /** Epoch ms of the password check (becomes auth_time). */
  passwordAt: number;
  enrollmentRequired: boolean;
}

const TICKET = /^[A-Za-z0-9_-]{43}$/;
const key = (ticket: string) =>
  `latchkey:auth:mfa:${createHash('sha256').update(ticket).digest('base64url')}`;

@Injectable()
export class MfaTicketStore {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(AUTH_CONFIG) private readonly config: AuthConfig,
  ) {}

  async issue(data: MfaTicket): Promise<{ ticket: string; expiresAt: Date }> {
    const ticket = randomBytes(32).toString('base64url');
    const ttl = this.config.MFA_TICKET_TTL_SECONDS;
    await this.redis.set(key(ticket), JSON.stringify(data), 'EX', ttl);
    return { ticket, expiresAt: new Date(Date.now() + ttl * 1000) };
  }

  /** Reads a live ticket without using it up (TOTP enrolment). */
  async peek(ticket: string): Promise<MfaTicket | null> {
    if (typeof ticket !== 'string' || !TICKET.test(ticket)) return null;
    const raw = await this.redis.get(key(ticket));
    return raw ? (JSON.parse(raw) as MfaTicket) : null;
  }

  /** Uses a ticket up: at most one caller gets it. */
  async consume(ticket: string): Promise<MfaTicket | null> {
    if (typeof ticket !== 'string' || !TICKET.test(ticket)) return null;
    const raw = await this.redis.getdel(key(ticket));
    return raw ? (JSON.parse(raw) as MfaTicket) : null;
  }
}
