/**
 * Keyset (cursor) pagination: rows in a stable order — a sort column, then the
 * row's unique `id` when the sort column is not unique by itself — that rows
 * inserted meanwhile do not shift, and an opaque page token naming the key of the
 * page's last row (base64url of a JSON array: [sort] or [sort, id], as text).
 *
 *   const pages = keyset({ sortKey: 'createdAt', sort: keyCodecs.date, id: keyCodecs.uuid, direction: 'desc' });
 *   const page = await pages.page({ pageSize, pageToken }, ({ where, orderBy, take }) =>
 *     db.thing.findMany({ where: { ...filters, ...where }, orderBy, take }),
 *   );
 *
 * A token this helper did not write is INVALID_ARGUMENT INVALID_PAGE_TOKEN.
 */
import { DomainError } from '../errors/domain-error';

export type SortDirection = 'asc' | 'desc';
export type KeyBound<V> = { gt: V } | { lt: V };

/** How one key value is written into a page token and read back. */
export interface KeyCodec<V> {
  write(value: V): string;
  /** The value `text` stands for, or undefined when it is not one `write` produces. */
  read(text: string): V | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const INT64_MAX = 2n ** 63n - 1n;
/** Longer tokens are refused before any parsing. */
const MAX_TOKEN_LENGTH = 1024;

/** A string key that `pattern` (anchored) accepts. */
export function matchingKey(pattern: RegExp): KeyCodec<string> {
  return { write: (s) => s, read: (s) => (pattern.test(s) ? s : undefined) };
}

export const keyCodecs = {
  /** A timestamp, as ISO 8601 with milliseconds (what timestamptz(3) and Date hold). */
  date: {
    write: (d: Date) => d.toISOString(),
    read: (s: string) => (ISO_MS.test(s) && !Number.isNaN(Date.parse(s)) ? new Date(s) : undefined),
  } satisfies KeyCodec<Date>,
  /** A non-negative 64-bit integer (a sequence number). */
  bigint: {
    write: (n: bigint) => n.toString(),
    read: (s: string) => (/^\d{1,19}$/.test(s) && BigInt(s) <= INT64_MAX ? BigInt(s) : undefined),
  } satisfies KeyCodec<bigint>,
  uuid: matchingKey(UUID),
} as const;

export interface KeysetOptions<S extends string, V> {
  /** The column rows are ordered by. */
  sortKey: S;
  sort: KeyCodec<V>;
  /** The codec of the unique `id` that orders rows with equal sort keys; omitted when `sortKey` is unique. */
  id?: KeyCodec<string>;
  direction: SortDirection;
}

/** The key of a page's last row, read from a page token. */
export interface Cursor<V> {
  sort: V;
  id?: string;
}

type SortBound<S extends string, V> = { [P in S]: KeyBound<V> };
/** 'id' when rows of equal sort keys are ordered by `id`, never when the sort key is unique. */
type Tie = 'id' | never;
type IsNever<T> = [T] extends [never] ? true : false;

/** The rows after a cursor (nothing for the first page), to add to a query's `where`. */
export type KeysetWhere<S extends string, V, T extends Tie = 'id'> =
  | Record<string, never>
  | SortBound<S, V>
  | (IsNever<T> extends true
      ? never
      : { OR: [SortBound<S, V>, { [P in S]: V } & { id: KeyBound<string> }] });

/** What one page's query takes: the rows after the cursor, in key order, one row more than a page. */
export interface KeysetSlice<S extends string, V, T extends Tie = 'id'> {
  where: KeysetWhere<S, V, T>;
  orderBy: ({ [P in S]: SortDirection } | { [P in T]: SortDirection })[];
  take: number;
}

/** A row of a keyset: its sort key, and its id when the keyset has a tie-breaker. */
export type KeysetRow<S extends string, V, T extends Tie = 'id'> = { [P in S]: V } & {
  [P in T]: string;
};

export interface PageQuery {
  pageSize: number;
  /** '' or undefined for the first page. */
  pageToken?: string;
}

export interface Page<R> {
  items: R[];
  /** '' on the last page. */
  nextPageToken: string;
}

export class Keyset<S extends string, V, T extends Tie = 'id'> {
  constructor(private readonly options: KeysetOptions<S, V>) {}

  /** The token of the page after `row`. */
  encode(row: KeysetRow<S, V, T>): string {
    const { sortKey, sort, id } = this.options;
    const key = [sort.write(row[sortKey])];
    if (id) {
      const rowId = (row as { id?: unknown }).id;
      if (typeof rowId !== 'string') throw new Error(`keyset: the row has no id after ${sortKey}`);
      key.push(id.write(rowId));
    }
    return Buffer.from(JSON.stringify(key)).toString('base64url');
  }

  /** The cursor `token` names (undefined for '' or undefined); INVALID_PAGE_TOKEN when it is not a token of this keyset. */
  decode(token: string | undefined): Cursor<V> | undefined {
    if (!token) return undefined;
    const cursor = token.length <= MAX_TOKEN_LENGTH ? this.read(token) : undefined;
    if (!cursor)
      throw DomainError.invalidArgument(
        'INVALID_PAGE_TOKEN',
        'the page token is not one this list returned; list again without it',
        [{ field: 'pageToken', description: 'is not a page token of this list' }],
      );
    return cursor;
  }

  private read(token: string): Cursor<V> | undefined {
    let key: unknown;
    try {
      key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const { sort, id } = this.options;
    if (!Array.isArray(key) || key.length !== (id ? 2 : 1)) return undefined;
    if (!key.every((k): k is string => typeof k === 'string')) return undefined;
    const s = sort.read(key[0]!);
    if (s === undefined) return undefined;
    if (!id) return { sort: s };
    const i = id.read(key[1]!);
    return i === undefined ? undefined : { sort: s, id: i };
  }

  /** The rows strictly after `cursor` in this keyset's order. */
  where(cursor: Cursor<V> | undefined): KeysetWhere<S, V, T> {
    if (!cursor) return {};
    const { sortKey, direction } = this.options;
    const bound = <T>(v: T): KeyBound<T> => (direction === 'asc' ? { gt: v } : { lt: v });
    const past = { [sortKey]: bound(cursor.sort) } as SortBound<S, V>;
    if (cursor.id === undefined) return past;
    const tie = { [sortKey]: cursor.sort, id: bound(cursor.id) };
    return { OR: [past, tie] } as KeysetWhere<S, V, T>;
  }

  /** What to fetch for `query`'s page (INVALID_PAGE_TOKEN on a bad token). */
  slice(query: PageQuery): KeysetSlice<S, V, T> {
    const { sortKey, id, direction } = this.options;
    return {
      where: this.where(this.decode(query.pageToken)),
      orderBy: [
        { [sortKey]: direction } as { [P in S]: SortDirection },
        ...(id ? [{ id: direction } as { [P in T]: SortDirection }] : []),
      ],
      take: query.pageSize + 1,
    };
  }

  /** The page out of the up to `pageSize + 1` rows `slice` asked for, and the next page's token. */
  take<R extends KeysetRow<S, V, T>>(rows: R[], pageSize: number): Page<R> {
    const items = rows.slice(0, pageSize);
    const last = items[items.length - 1];
    return { items, nextPageToken: rows.length > pageSize && last ? this.encode(last) : '' };
  }

  /** One page: `fetch` runs the query with the slice, the rows become the page and its token. */
  async page<R extends KeysetRow<S, V, T>>(
    query: PageQuery,
    fetch: (slice: KeysetSlice<S, V, T>) => Promise<R[]>,
  ): Promise<Page<R>> {
    return this.take(await fetch(this.slice(query)), query.pageSize);
  }
}

/** A keyset ordered by `sortKey`, then by `id` when `options.id` is given. */
export function keyset<S extends string, V>(
  options: KeysetOptions<S, V> & { id: KeyCodec<string> },
): Keyset<S, V, 'id'>;
export function keyset<S extends string, V>(
  options: KeysetOptions<S, V> & { id?: undefined },
): Keyset<S, V, never>;
export function keyset<S extends string, V>(options: KeysetOptions<S, V>): Keyset<S, V, Tie> {
  return new Keyset<S, V, Tie>(options);
}
