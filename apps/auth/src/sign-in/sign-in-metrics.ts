/**
 * latchkey_sign_in_attempts_total{stage, outcome}: one count per sign-in step
 * tried (password, one-time code, key sign-in, refresh), "success" or the
 * failure's reason. The chart's LatchkeySignInFailureRatioHigh alert divides the
 * failures by all attempts, per stage. The labels are bounded: stages and
 * catalogue reasons only.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { SIGN_IN_FAILURE_REASONS } from '@latchkey/events';
import { MetricsRegistry } from '@latchkey/service-kit';
import { Counter } from 'prom-client';

/** password and otp: primary sign-in; key: key sign-in; refresh: a device-bound refresh token. */
export type SignInStage = 'password' | 'otp' | 'key' | 'refresh';
export type SignInOutcome =
  | 'success'
  /** The tenant named in the request does not exist (not a catalogue reason: no event). */
  | 'unknown_tenant'
  | (typeof SIGN_IN_FAILURE_REASONS)[number];

@Injectable()
export class SignInMetrics {
  private readonly attempts: Counter<'stage' | 'outcome'>;

  constructor(@Inject(MetricsRegistry) metrics: MetricsRegistry) {
    this.attempts = new Counter({
      name: 'latchkey_sign_in_attempts_total',
      help: 'Sign-in steps tried, by stage (password, otp) and outcome (success or the failure reason)',
      labelNames: ['stage', 'outcome'],
      registers: [metrics.registry],
    });
  }

  attempt(stage: SignInStage, outcome: SignInOutcome): void {
    this.attempts.inc({ stage, outcome });
  }
}
