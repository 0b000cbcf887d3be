import { keysetPage, type KeysetRow, type KeysetSlice } from './keyset-page';

const rows: KeysetRow[] = Array.from({ length: 5 }, (_, i) => ({
  createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i < 3 ? 0 : i)), // three rows share a timestamp
  id: `00000000-0000-4000-8000-00000000000${i}`,
}));

/** An in-memory fetch that honours the slice like the database does. */
function fetchFrom(all: KeysetRow[]) {
  const slices: KeysetSlice[] = [];
  const fetch = async (slice: KeysetSlice) => {
    slices.push(slice);
    const dir = slice.orderBy[0].createdAt === 'asc' ? 1 : -1;
    const key = (r: KeysetRow) => [r.createdAt.getTime(), r.id] as const;
    const cmp = (a: KeysetRow, b: KeysetRow) => {
      const [at, ai] = key(a);
      const [bt, bi] = key(b);
      return dir * (at - bt || ai.localeCompare(bi));
    };
    const sorted = [...all].sort(cmp);
    const or = 'OR' in slice.after ? slice.after.OR : undefined;
    const last = or && (or[1] as { createdAt: Date; id: { gt?: string; lt?: string } });
    const from = last
      ? sorted.filter(
          (r) => cmp(r, { createdAt: last.createdAt, id: last.id.gt ?? last.id.lt! }) > 0,
        )
      : sorted;
    return from.slice(0, slice.take);
  };
  return { fetch, slices };
}

describe('keysetPage', () => {
  it.each(['asc', 'desc'] as const)(
    'walks every row once, in %s key order, across rows that share a timestamp',
    async (direction) => {
      const { fetch } = fetchFrom(rows);
      const seen: string[] = [];
      let pageToken = '';
      do {
        const page = await keysetPage({ pageSize: 2, pageToken }, direction, fetch);
        seen.push(...page.items.map((r) => r.id));
        pageToken = page.nextPageToken;
      } while (pageToken);
      const ids = rows.map((r) => r.id);
      expect(seen).toEqual(direction === 'asc' ? ids : [...ids].reverse());
    },
  );

  it('asks for one row more than a page, and ends without a token on the last page', async () => {
    const { fetch, slices } = fetchFrom(rows);
    const page = await keysetPage({ pageSize: 5, pageToken: '' }, 'asc', fetch);
    expect(slices[0]).toMatchObject({ take: 6, after: {} });
    expect(page.items).toHaveLength(5);
    expect(page.nextPageToken).toBe('');
  });

  it.each([
    ['not base64url JSON', '%%%'],
    ['JSON without the key', Buffer.from('{"x":1}').toString('base64url')],
    [
      'a key that is not a timestamp and id',
      Buffer.from('{"c":"soon","i":"1"}').toString('base64url'),
    ],
  ])('refuses a page token that is %s (INVALID_PAGE_TOKEN)', async (_what, pageToken) => {
    await expect(
      keysetPage({ pageSize: 2, pageToken }, 'asc', fetchFrom(rows).fetch),
    ).rejects.toMatchObject({ kind: 'INVALID_ARGUMENT', reason: 'INVALID_PAGE_TOKEN' });
  });
});
