/**
 * Many callers, one statement: an item submitted while no batch is running goes
 * out at once, alone; items submitted while a batch is running wait for it and
 * then go out together (up to `maxBatch` per statement). Under no load nothing
 * waits; under load the statements (and their round trips and socket writes) per
 * item fall with the concurrency. Each caller gets its own result; when a batch
 * fails, every caller in it gets the error, and nothing of the batch is stored
 * if the statement is atomic (one statement is).
 */
export class Coalescer<I, O> {
  private queue: { item: I; resolve(o: O): void; reject(e: unknown): void }[] = [];
  private running = false;

  /** `run` answers one result per item, in the order of the items. */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 100,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = await this.run(batch.map((w) => w.item));
          if (results.length !== batch.length)
            throw new Error(`coalesced batch answered ${results.length} of ${batch.length}`);
          batch.forEach((w, i) => w.resolve(results[i]!));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
