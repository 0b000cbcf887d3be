import { Coalescer } from './coalescer';

/** A batch runner whose batches the test releases one at a time. */
function gatedRunner() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((release) => gates.push(release));
    if (items.includes(13)) throw new Error('unlucky batch');
    return items.map((i) => i * 10);
  };
  const releaseNext = async () => {
    while (!gates.length) await new Promise((r) => setImmediate(r));
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { run, batches, releaseNext };
}

describe('Coalescer', () => {
  it('sends the first item alone at once and those arriving meanwhile together', async () => {
    const g = gatedRunner();
    const c = new Coalescer(g.run);
    const first = c.submit(1);
    const later = [c.submit(2), c.submit(3), c.submit(4)];
    expect(g.batches).toEqual([[1]]);
    await g.releaseNext();
    expect(await first).toBe(10);
    expect(g.batches).toEqual([[1], [2, 3, 4]]);
    await g.releaseNext();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    // Idle again: the next item goes out at once.
    const next = c.submit(5);
    expect(g.batches).toHaveLength(3);
    await g.releaseNext();
    expect(await next).toBe(50);
  });

  it('cuts batches at maxBatch', async () => {
    const g = gatedRunner();
    const c = new Coalescer(g.run, { maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((i) => c.submit(i));
    for (let i = 0; i < 3; i++) await g.releaseNext();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
    expect(g.batches).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('fails every caller of a failed batch, and only those', async () => {
    const g = gatedRunner();
    const c = new Coalescer(g.run);
    const first = c.submit(1);
    const failing = [c.submit(12), c.submit(13)].map((p) =>
      p.then(
        () => 'resolved',
        (e: Error) => e.message,
      ),
    );
    await g.releaseNext();
    const after = c.submit(2);
    await g.releaseNext();
    await g.releaseNext();
    expect(await first).toBe(10);
    expect(await Promise.all(failing)).toEqual(['unlucky batch', 'unlucky batch']);
    expect(await after).toBe(20);
  });

  it('refuses a runner that answers the wrong number of results', async () => {
    const c = new Coalescer(async (items: number[]) => items.slice(1));
    await expect(c.submit(1)).rejects.toThrow('coalesced batch answered 0 of 1');
  });

  it('runs keys side by side, each with its own queue, and forgets a key once idle', async () => {
    const g = gatedRunner();
    const c = new Coalescer(g.run);
    const a = [c.submit(1, 'a'), c.submit(2, 'a'), c.submit(3, 'a')];
    const b = [c.submit(4, 'b'), c.submit(5, 'b')];
    // Each key's first item went out at once, alone; the others wait for their own key only.
    expect(g.batches).toEqual([[1], [4]]);
    expect(c.activeKeys).toBe(2);
    for (let i = 0; i < 4; i++) await g.releaseNext();
    expect(await Promise.all(a)).toEqual([10, 20, 30]);
    expect(await Promise.all(b)).toEqual([40, 50]);
    expect(g.batches).toEqual([[1], [4], [2, 3], [5]]);
    expect(c.activeKeys).toBe(0);
  });

  it('puts in one batch only the items sameBatch admits, keeping the others in order', async () => {
    const g = gatedRunner();
    const sameParity = (first: number, item: number) => first % 2 === item % 2;
    const c = new Coalescer(g.run, { maxBatch: 2, sameBatch: sameParity });
    const all = [1, 2, 3, 4, 5, 6, 7].map((i) => c.submit(i));
    for (let i = 0; i < 5; i++) await g.releaseNext();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50, 60, 70]);
    // [1] alone (nothing was running); then 2 heads the queue: evens up to 2, then odds, ...
    expect(g.batches).toEqual([[1], [2, 4], [3, 5], [6], [7]]);
  });
});
