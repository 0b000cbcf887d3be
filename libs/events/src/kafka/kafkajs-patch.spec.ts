/**
 * patches/kafkajs+2.2.4.patch: kafkajs's RequestQueue must not keep a timer
 * running when it has nothing pending and is not throttled (kafkajs#1556,
 * #1704). Unpatched, every connection reschedules a 1 ms timer forever: about
 * 900 wake-ups/s per idle service. Throttled or pending requests are still
 * checked as before.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const RequestQueue = require('kafkajs/src/network/requestQueue') as new (o: object) => {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  destroy(): void;
};

const logger = { debug: () => undefined, warn: () => undefined, error: () => undefined };

function queue(maxInFlightRequests: number | null = null) {
  return new RequestQueue({
    maxInFlightRequests,
    requestTimeout: 30_000,
    enforceRequestTimeout: false,
    clientId: 'patch-spec',
    broker: '127.0.0.1:9',
    logger,
  });
}

describe('kafkajs RequestQueue (patched)', () => {
  it('schedules nothing when idle and not throttled', () => {
    const q = queue();
    q.checkPendingRequests();
    const scheduled = q.throttleCheckTimeoutId;
    if (scheduled) clearTimeout(scheduled); // unpatched: stop the loop before failing
    expect(scheduled).toBeNull();
  });

  it('still schedules a check for the end of a throttle', () => {
    const q = queue();
    q.throttledUntil = Date.now() + 60_000;
    q.checkPendingRequests();
    expect(q.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(q.throttleCheckTimeoutId!);
  });

  it('still checks again soon when requests are pending behind the in-flight limit', () => {
    const q = queue(0);
    q.pending.push({ correlationId: 1 });
    q.checkPendingRequests();
    expect(q.pending).toHaveLength(1);
    expect(q.throttleCheckTimeoutId).not.toBeNull();
    clearTimeout(q.throttleCheckTimeoutId!);
  });
});
