/**
 * latchkey_audit_chain_verifications_total{outcome} and
 * latchkey_audit_chain_verification_failures_total{reason}: every VerifyChain
 * run, and the ones that found the chain broken, by fault. The chart's
 * LatchkeyAuditChainVerificationFailed alert fires on any increase of the latter.
 */
import { Inject, Injectable } from '@nestjs/common';
import { MetricsRegistry } from '@latchkey/service-kit';
import { Counter } from 'prom-client';

@Injectable()
export class ChainVerificationMetrics {
  private readonly runs: Counter<'outcome'>;
  private readonly failures: Counter<'reason'>;

  constructor(@Inject(MetricsRegistry) metrics: MetricsRegistry) {
    this.runs = new Counter({
      name: 'latchkey_audit_chain_verifications_total',
      help: 'Audit hash chain verifications run, by outcome (ok, broken)',
      labelNames: ['outcome'],
      registers: [metrics.registry],
    });
    this.failures = new Counter({
      name: 'latchkey_audit_chain_verification_failures_total',
      help: 'Audit hash chain verifications that found the chain broken, by the first fault',
      labelNames: ['reason'],
      registers: [metrics.registry],
    });
  }

  record(result: { ok: boolean; reason: string }): void {
    this.runs.inc({ outcome: result.ok ? 'ok' : 'broken' });
    if (!result.ok) this.failures.inc({ reason: result.reason });
  }
}
