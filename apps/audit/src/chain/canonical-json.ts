/**
 * RFC 8785 (JCS) canonical JSON of a value that must be I-JSON: json-canonicalize
 * does the canonicalization; this module refuses what RFC 8785 says is invalid input
 * (NaN/Infinity, lone surrogates, undefined, non-plain values) instead of hashing
 * something no other implementation would reproduce.
 */
import { canonicalize } from 'json-canonicalize';

export class NotCanonicalizableError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path || '(root)'}: ${problem}`);
    this.name = 'NotCanonicalizableError';
  }
}

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function check(value: unknown, path: string, depth: number): void {
  if (depth > 64) throw new NotCanonicalizableError(path, 'nested deeper than 64 levels');
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value))
        throw new NotCanonicalizableError(path, 'contains a lone UTF-16 surrogate');
      // Not a JCS rule: PostgreSQL text and jsonb cannot store U+0000.
      if (value.includes('\u0000')) throw new NotCanonicalizableError(path, 'contains U+0000');
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw new NotCanonicalizableError(path, `${value} is not a JSON number`);
      return;
    case 'boolean':
      return;
    case 'object':
      if (value === null) return;
      if (Array.isArray(value)) {
        value.forEach((v, i) => check(v, `${path}[${i}]`, depth + 1));
        return;
      }
      if (
        Object.getPrototypeOf(value) !== Object.prototype &&
        Object.getPrototypeOf(value) !== null
      )
        throw new NotCanonicalizableError(path, 'is not a plain JSON object');
      for (const [k, v] of Object.entries(value)) {
        if (LONE_SURROGATE.test(k))
          throw new NotCanonicalizableError(path, 'has a key with a lone UTF-16 surrogate');
        check(v, path ? `${path}.${k}` : k, depth + 1);
      }
      return;
    default:
      throw new NotCanonicalizableError(path, `${typeof value} is not a JSON value`);
  }
}

/** Throws NotCanonicalizableError unless `value` is I-JSON that PostgreSQL can store. */
export function assertCanonicalizable(value: unknown): void {
  check(value, '', 0);
}

/**
 * RFC 8785 serialization of a tree made of plain objects, arrays, strings, finite
 * numbers, booleans and null (what toOcsf builds from validated event data): object
 * members in UTF-16 code-unit order of their names, every primitive as JSON.stringify
 * writes it (which is what RFC 8785 prescribes for strings and numbers). The same
 * output as json-canonicalize (a differential test holds them equal) at a fraction
 * of the cost: no path strings, no cycle map. Undefined members are left out.
 */
export function canonicalizeTree(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new NotCanonicalizableError('', `${value} is not a JSON number`);
    return JSON.stringify(value);
  }
  if ((value as { toJSON?: unknown }).toJSON != null) return JSON.stringify(value); // as json-canonicalize
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i) out += ',';
      const v: unknown = value[i];
      out += v === undefined ? 'null' : canonicalizeTree(v);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalizeTree(v);
    first = false;
  }
  return out + '}';
}

/** The RFC 8785 canonical form of `value`; throws NotCanonicalizableError for non-I-JSON input. */
export function canonicalJson(value: unknown): string {
  check(value, '', 0);
  return canonicalize(value);
}
