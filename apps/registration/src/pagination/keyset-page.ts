/**
 * Keyset (cursor) pagination over (createdAt, id): a stable order that rows
 * inserted meanwhile do not shift, and an opaque page token (base64url JSON of
 * the last row's key).
 */
import { DomainError } from '@latchkey/service-kit';

export interface KeysetRow {
  createdAt: Date;
  id: string;
}

export interface KeysetQuery {
  pageSize: number;
  /** '' for the first page. */
  pageToken: string;
}

/** What a page fetch adds to its query: rows after the token's row, in key order, one extra row. */
export interface KeysetSlice {
  after:
    | { OR: ({ createdAt: KeyBound<Date> } | { createdAt: Date; id: KeyBound<string> })[] }
    | Record<string, never>;
  orderBy: [{ createdAt: 'asc' | 'desc' }, { id: 'asc' | 'desc' }];
  take: number;
}

type KeyBound<T> = { gt: T } | { lt: T };

interface Cursor {
  c: string;
  i: string;
}

/**
 * One page of `fetch`'s rows in `direction` order, and the token of the next
 * page ('' on the last). A page token that cannot be read is INVALID_ARGUMENT
 * INVALID_PAGE_TOKEN.
 */
export async function keysetPage<T extends KeysetRow>(
  query: KeysetQuery,
  direction: 'asc' | 'desc',
  fetch: (slice: KeysetSlice) => Promise<T[]>,
): Promise<{ items: T[]; nextPageToken: string }> {
  const cursor = decodeCursor(query.pageToken);
  const bound = <V>(v: V): KeyBound<V> => (direction === 'asc' ? { gt: v } : { lt: v });
  let after: KeysetSlice['after'] = {};
  if (cursor) {
    const c = new Date(cursor.c);
    after = { OR: [{ createdAt: bound(c) }, { createdAt: c, id: bound(cursor.i) }] };
  }
  const rows = await fetch({
    after,
    orderBy: [{ createdAt: direction }, { id: direction }],
    take: query.pageSize + 1,
  });
  const items = rows.slice(0, query.pageSize);
  const last = items[items.length - 1];
  return {
    items,
    nextPageToken:
      rows.length > query.pageSize && last
        ? Buffer.from(
            JSON.stringify({ c: last.createdAt.toISOString(), i: last.id } satisfies Cursor),
          ).toString('base64url')
        : '',
  };
}

function decodeCursor(token: string): Cursor | undefined {
  if (!token) return undefined;
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (
      typeof v.c === 'string' &&
      typeof v.i === 'string' &&
      !Number.isNaN(Date.parse(v.c)) &&
      /^[0-9a-f-]{36}$/i.test(v.i)
    )
      return { c: v.c, i: v.i };
  } catch {
    // not a page token
  }
  throw DomainError.invalidArgument('INVALID_PAGE_TOKEN', 'the page token is not valid');
}
