import { randomUUID } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';
import { canonicalizeTree } from './canonical-json';

/** A deterministic pseudo-random generator (xorshift32), so that a failure can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

// Characters that stress key ordering and string escaping: ASCII punctuation before and after
// digits, controls, quotes, backslash, non-ASCII in and above the BMP (surrogate pairs).
const ALPHABET = [
  'a',
  'B',
  'z',
  '0',
  '9',
  '1',
  '_',
  '-',
  '$',
  ' ',
  '"',
  '\\',
  '\n',
  '\u001f',
  '\u007f',
  'é',
  '\u2028',
  '€',
  '\uffff',
  '😀',
  '𝄞',
];

function randomString(r: () => number, max = 6): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = r();
  if (depth > 3 || pick < 0.45) {
    const kind = Math.floor(r() * 6);
    if (kind === 0) return randomString(r);
    if (kind === 1) return Math.floor((r() - 0.5) * 2 ** 40);
    if (kind === 2) return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
    if (kind === 3) return r() < 0.5;
    if (kind === 4) return null;
    return [0, -0, 1e21, 1e-7, 5e-324, 2 ** 53, 0.1 + 0.2][Math.floor(r() * 7)];
  }
  if (pick < 0.65)
    return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const obj: Record<string, unknown> = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    // Integer-like names too: V8 enumerates them first, RFC 8785 sorts them as strings.
    const key = r() < 0.2 ? String(Math.floor(r() * 200)) : randomString(r, 4);
    obj[key] = randomValue(r, depth + 1);
  }
  return obj;
}

describe('canonicalizeTree (the fast RFC 8785 path of the chain writer)', () => {
  it('writes exactly what json-canonicalize writes, for 5,000 random JSON trees', () => {
    const r = rng(0x5eed);
    for (let i = 0; i < 5000; i++) {
      const value = randomValue(r, 0);
      expect(canonicalizeTree(value)).toBe(canonicalize(value));
    }
  });

  it('orders integer-like member names as strings, not as array indexes', () => {
    const value = { '10': 1, '9': 2, $: 3, a: 4, '': 5 };
    expect(canonicalizeTree(value)).toBe('{"":5,"$":3,"10":1,"9":2,"a":4}');
    expect(canonicalizeTree(value)).toBe(canonicalize(value));
  });

  it('leaves out undefined members and refuses non-finite numbers', () => {
    const id = randomUUID();
    expect(canonicalizeTree({ b: undefined, a: id })).toBe(`{"a":"${id}"}`);
    expect(() => canonicalizeTree({ x: NaN })).toThrow('not a JSON number');
    expect(() => canonicalizeTree([Infinity])).toThrow('not a JSON number');
  });
});
