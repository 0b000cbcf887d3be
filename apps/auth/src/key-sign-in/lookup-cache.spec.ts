import { LookupCache } from './device-lookups';

describe('LookupCache', () => {
  it('serves nothing while its invalidation listener is not live', () => {
    const c = new LookupCache<string>(60_000);
    c.set('k', 'v', c.generation);
    expect(c.get('k')).toBeUndefined();
    c.setLive(true);
    c.set('k', 'v', c.generation);
    expect(c.get('k')).toBe('v');
    c.setLive(false);
    expect(c.get('k')).toBeUndefined();
    c.setLive(true);
    expect(c.get('k')).toBeUndefined(); // going down dropped everything
  });

  it('does not store a lookup that started before an invalidation', () => {
    const c = new LookupCache<string>(60_000);
    c.setLive(true);
    const before = c.generation;
    c.delete('k'); // the event arrives while the lookup is under way
    c.set('k', 'stale', before);
    expect(c.get('k')).toBeUndefined();
    c.set('k', 'fresh', c.generation);
    expect(c.get('k')).toBe('fresh');
  });

  it('expires entries after the TTL', () => {
    const c = new LookupCache<string>(1000);
    c.setLive(true);
    c.set('k', 'v', c.generation, 0);
    expect(c.get('k', 999)).toBe('v');
    expect(c.get('k', 1000)).toBeUndefined();
  });
});
