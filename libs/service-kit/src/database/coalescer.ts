/**
 * Many callers, one statement: an item submitted while no batch of its key is
 * running goes out at once, alone; items submitted while one is running wait for
 * it and then go out together (up to `maxBatch` per statement, and only items
 * `sameBatch` says may share the first one's statement). Under no load nothing
 * waits; under load the statements (and their round trips and socket writes) per
 * item fall with the concurrency. Each caller gets its own result; when a batch
 * fails, every caller in it gets the error, and nothing of the batch is stored
 * if the statement is atomic (one statement is).
 *
 * Keys are independent queues (one running batch per key; batches of different
 * keys run side by side); a key's queue is dropped as soon as it is empty, so
 * keys cost nothing once idle.
 */
export interface CoalescerOptions<I> {
  /** Items per batch (default 100). */
  maxBatch?: number;
  /** Whether `item` may go in the same batch as `first`; those that may not wait, in order. */
  sameBatch?: (first: I, item: I) => boolean;
}

interface Waiting<I, O> {
  item: I;
  resolve(o: O): void;
  reject(e: unknown): void;
}

export class Coalescer<I, O> {
  private readonly queues = new Map<string, Waiting<I, O>[]>();
  private readonly maxBatch: number;
  private readonly sameBatch?: (first: I, item: I) => boolean;

  /** `run` answers one result per item, in the order of the items. */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    options: CoalescerOptions<I> = {},
  ) {
    this.maxBatch = options.maxBatch ?? 100;
    this.sameBatch = options.sameBatch;
  }

  submit(item: I, key = ''): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const waiting = { item, resolve, reject };
      const queue = this.queues.get(key);
      if (queue) {
        queue.push(waiting);
        return;
      }
      const fresh = [waiting];
      this.queues.set(key, fresh);
      void this.drain(key, fresh);
    });
  }

  /** Keys with a batch running or waiting (for tests and metrics). */
  get activeKeys(): number {
    return this.queues.size;
  }

  private async drain(key: string, queue: Waiting<I, O>[]): Promise<void> {
    while (queue.length) {
      const batch = this.take(queue);
      try {
        const results = await this.run(batch.map((w) => w.item));
        if (results.length !== batch.length)
          throw new Error(`coalesced batch answered ${results.length} of ${batch.length}`);
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    // Same turn as the last length check: nobody can have joined this queue since.
    this.queues.delete(key);
  }

  /** The next batch, taken out of `queue`: the first item and those that may share its batch. */
  private take(queue: Waiting<I, O>[]): Waiting<I, O>[] {
    const { sameBatch } = this;
    if (!sameBatch) return queue.splice(0, this.maxBatch);
    const first = queue[0]!.item;
    const batch: Waiting<I, O>[] = [];
    const rest: Waiting<I, O>[] = [];
    for (const w of queue)
      (batch.length < this.maxBatch && sameBatch(first, w.item) ? batch : rest).push(w);
    queue.splice(0, queue.length, ...rest);
    return batch;
  }
}
