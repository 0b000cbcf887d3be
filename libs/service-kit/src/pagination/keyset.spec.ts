import { DomainError } from '../errors/domain-error';
import { keyCodecs, keyset, matchingKey } from './keyset';

interface Row {
  createdAt: Date;
  id: string;
}

const rows: Row[] = Array.from({ length: 5 }, (_, i) => ({
  createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i < 3 ? 0 : i)), // three rows share a timestamp
  id: `00000000-0000-4000-8000-00000000000${i}`,
}));

const pagesIn = (direction: 'asc' | 'desc') =>
  keyset({ sortKey: 'createdAt', sort: keyCodecs.date, id: keyCodecs.uuid, direction });

type Bound = { gt?: unknown; lt?: unknown };
const cmp = (a: unknown, b: unknown) =>
  a instanceof Date && b instanceof Date
    ? a.getTime() - b.getTime()
    : a! < b!
      ? -1
      : a! > b!
        ? 1
        : 0;

/** Fake for pure logic: one `where` condition of a slice, evaluated on a row as the database would. */
function matches(row: Record<string, unknown>, where: Record<string, unknown>): boolean {
  return Object.entries(where).every(([field, cond]) => {
    if (field === 'OR') return (cond as Record<string, unknown>[]).some((c) => matches(row, c));
    if (cond instanceof Date || typeof cond !== 'object') return cmp(row[field], cond) === 0;
    const b = cond as Bound;
    return 'gt' in b ? cmp(row[field], b.gt) > 0 : cmp(row[field], b.lt) < 0;
  });
}

interface AnySlice {
  where: object;
  orderBy: object[];
  take: number;
}

/** Fake for pure logic: an in-memory findMany that honours a slice's where, orderBy and take. */
function fetchFrom<R extends object>(all: R[]) {
  const slices: AnySlice[] = [];
  const fetch = async (slice: AnySlice): Promise<R[]> => {
    slices.push(slice);
    const order = slice.orderBy.map((o) => Object.entries(o)[0]!);
    const field = (r: R, f: string) => (r as Record<string, unknown>)[f];
    const sorted = all
      .filter((r) => matches(r as Record<string, unknown>, slice.where as Record<string, unknown>))
      .sort((a, b) => {
        for (const [f, dir] of order) {
          const c = cmp(field(a, f), field(b, f));
          if (c) return dir === 'asc' ? c : -c;
        }
        return 0;
      });
    return sorted.slice(0, slice.take);
  };
  return { fetch, slices };
}

async function walk(
  pages: ReturnType<typeof pagesIn>,
  all: Row[],
  pageSize: number,
): Promise<{ ids: string[]; tokens: string[] }> {
  const { fetch } = fetchFrom(all);
  const ids: string[] = [];
  const tokens: string[] = [];
  let pageToken = '';
  do {
    const page = await pages.page({ pageSize, pageToken }, fetch);
    ids.push(...page.items.map((r) => r.id));
    pageToken = page.nextPageToken;
    tokens.push(pageToken);
  } while (pageToken);
  return { ids, tokens };
}

describe('keyset pagination', () => {
  it('round-trips the last row of a page through its opaque token', () => {
    const pages = pagesIn('asc');
    const token = pages.encode(rows[1]!);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(pages.decode(token)).toEqual({ sort: rows[1]!.createdAt, id: rows[1]!.id });
    const bySeq = keyset({ sortKey: 'seq', sort: keyCodecs.bigint, direction: 'asc' });
    expect(bySeq.decode(bySeq.encode({ seq: 9_223_372_036_854_775_807n }))).toEqual({
      sort: 9_223_372_036_854_775_807n,
    });
    expect(pages.decode('')).toBeUndefined();
    expect(pages.decode(undefined)).toBeUndefined();
  });

  it.each(['asc', 'desc'] as const)(
    'walks every row once, in %s key order, across rows that share a sort key',
    async (direction) => {
      const { ids, tokens } = await walk(pagesIn(direction), rows, 2);
      const all = rows.map((r) => r.id);
      expect(ids).toEqual(direction === 'asc' ? all : [...all].reverse());
      // Pages of 2, 2 and 1: the last one has no next token.
      expect(tokens.map(Boolean)).toEqual([true, true, false]);
    },
  );

  it('builds the where after the cursor for either direction', () => {
    const cursor = { sort: rows[2]!.createdAt, id: rows[2]!.id };
    expect(pagesIn('asc').where(cursor)).toEqual({
      OR: [{ createdAt: { gt: cursor.sort } }, { createdAt: cursor.sort, id: { gt: cursor.id } }],
    });
    expect(pagesIn('desc').where(cursor)).toEqual({
      OR: [{ createdAt: { lt: cursor.sort } }, { createdAt: cursor.sort, id: { lt: cursor.id } }],
    });
    expect(pagesIn('asc').where(undefined)).toEqual({});
    const bySeq = keyset({ sortKey: 'seq', sort: keyCodecs.bigint, direction: 'desc' });
    expect(bySeq.where({ sort: 7n })).toEqual({ seq: { lt: 7n } });
    expect(bySeq.slice({ pageSize: 3 }).orderBy).toEqual([{ seq: 'desc' }]);
  });

  it('asks for one row more than a page, and ends without a token on the last page', async () => {
    const { fetch, slices } = fetchFrom(rows);
    const page = await pagesIn('asc').page({ pageSize: 5, pageToken: '' }, fetch);
    expect(slices[0]).toEqual({
      where: {},
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: 6,
    });
    expect(page.items).toHaveLength(5);
    expect(page.nextPageToken).toBe('');
    // Exactly one more row than the page: a token, and the next page holds that row only.
    const first = await pagesIn('asc').page({ pageSize: 4 }, fetch);
    expect(first.nextPageToken).not.toBe('');
    const last = await pagesIn('asc').page({ pageSize: 4, pageToken: first.nextPageToken }, fetch);
    expect(last).toEqual({ items: [rows[4]], nextPageToken: '' });
  });

  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  it.each([
    ['not base64url JSON', '%%%'],
    ['JSON that is not a key array', b64({ c: '2026-01-01T00:00:00.000Z', i: rows[0]!.id })],
    ['a key without its id', b64(['2026-01-01T00:00:00.000Z'])],
    ['a key with a value too many', b64(['2026-01-01T00:00:00.000Z', rows[0]!.id, 'x'])],
    ['a sort key that is not a timestamp', b64(['soon', rows[0]!.id])],
    ['an id that is not a UUID', b64(['2026-01-01T00:00:00.000Z', '1'])],
    ['a key of numbers', b64([1767225600000, rows[0]!.id])],
    ['too long', 'A'.repeat(1025)],
  ])('refuses a page token that is %s: INVALID_ARGUMENT INVALID_PAGE_TOKEN', (_what, token) => {
    const err = (() => {
      try {
        pagesIn('asc').decode(token);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({
      kind: 'INVALID_ARGUMENT',
      reason: 'INVALID_PAGE_TOKEN',
      violations: [{ field: 'pageToken' }],
    });
  });

  it('refuses a malformed token before anything is fetched', async () => {
    const { fetch, slices } = fetchFrom(rows);
    await expect(
      pagesIn('desc').page({ pageSize: 2, pageToken: 'garbage' }, fetch),
    ).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT', reason: 'INVALID_PAGE_TOKEN' });
    expect(slices).toHaveLength(0);
  });

  it('reads sequence numbers and pattern-checked strings back only when valid', () => {
    const bySeq = keyset({ sortKey: 'seq', sort: keyCodecs.bigint, direction: 'asc' });
    for (const bad of [['-1'], ['9223372036854775808'], ['1.5'], [''], ['1', '2']])
      expect(() => bySeq.decode(b64(bad))).toThrow(DomainError);
    const byName = keyset({
      sortKey: 'username',
      sort: matchingKey(/^[a-z]{1,8}$/),
      direction: 'asc',
    });
    expect(byName.decode(byName.encode({ username: 'alice' }))).toEqual({ sort: 'alice' });
    expect(() => byName.decode(b64(['Alice']))).toThrow(DomainError);
  });
});
