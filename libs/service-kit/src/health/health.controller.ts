/** HTTP liveness (/healthz) and readiness (/readyz) endpoints. */
import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { HealthRegistry } from './health-registry';

@Controller()
export class HealthController {
  constructor(private readonly registry: HealthRegistry) {}

  @Get('healthz')
  live() {
    return { status: 'ok' };
  }

  @Get('readyz')
  async ready(@Res() res: Response) {
    const report = await this.registry.report();
    if (report.ready) {
      res.status(200).json({ status: 'ready', checks: report.checks });
      return;
    }
    res
      .status(503)
      .type('application/problem+json')
      .send(
        JSON.stringify({
          type: 'https://latchkey.dev/problems/not-ready',
          title: 'not ready',
          status: 503,
          detail: 'one or more dependencies are unavailable',
          reason: 'NOT_READY',
          checks: report.checks,
        }),
      );
  }
}
