/** Primary sign-in (password, then TOTP) for provisioning, PIN reset and admin commands. */
import { decodeJwt } from 'jose';
import type { AgentContext } from '../cli/agent-context';
import { UsageError } from '../server/endpoints';

export interface PrimarySession {
  accessToken: string;
  userId: string;
  username: string;
}

export async function primarySignIn(ctx: AgentContext, tenant: string): Promise<PrimarySession> {
  const username = (ctx.flags.user as string | undefined) ?? (await ctx.terminal.ask('Username: '));
  if (!username) throw new UsageError('a username is required (--user)');
  const password = await ctx.terminal.secret(`Password for ${username}: `);
  const auth = ctx.clients().of('auth');
  const first = await auth.call('SignInWithPassword', { tenant, username, password });
  if (first.totpEnrollmentRequired)
    throw new UsageError(
      `${username} has no active authenticator (TOTP) yet: enrol one first, then run this again`,
    );
  const code = await ctx.terminal.secret('Authenticator code (TOTP): ');
  const done = await auth.call('CompleteMfa', { mfaTicket: first.mfaTicket, code: code.trim() });
  const accessToken = done.accessToken as string;
  const claims = decodeJwt(accessToken);
  return { accessToken, userId: String(claims.sub), username };
}
