/** grpc.health.v1 status kept in step with the readiness checks. */
import { HealthImplementation } from 'grpc-health-check';
import type { HealthRegistry } from './health-registry';

export class GrpcHealthReporter {
  readonly implementation = new HealthImplementation({ '': 'NOT_SERVING' });
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly registry: HealthRegistry,
    private readonly serviceNames: string[],
    private readonly intervalMs = 2000,
  ) {}

  private set(status: 'SERVING' | 'NOT_SERVING') {
    for (const name of ['', ...this.serviceNames]) this.implementation.setStatus(name, status);
  }

  async refresh(): Promise<void> {
    const { ready } = await this.registry.report();
    this.set(ready ? 'SERVING' : 'NOT_SERVING');
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.set('NOT_SERVING');
  }
}
