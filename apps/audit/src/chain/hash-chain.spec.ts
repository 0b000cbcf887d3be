import { createHash } from 'node:crypto';
import { canonicalJson, NotCanonicalizableError } from './canonical-json';
import { chainHash, GENESIS_HASH } from './hash-chain';

describe('canonical JSON (RFC 8785)', () => {
  it('sorts keys and uses ECMAScript number forms (RFC 8785 §3.2.2)', () => {
    expect(canonicalJson({ b: [1e21, 0.1, -0], a: { d: 'é', c: null } })).toBe(
      '{"a":{"c":null,"d":"é"},"b":[1e+21,0.1,0]}',
    );
  });

  it.each([
    ['NaN', { x: NaN }],
    ['Infinity', { x: [Infinity] }],
    ['a lone high surrogate', { x: 'a\ud800b' }],
    ['a lone low surrogate', { x: '\udc00' }],
    ['a lone surrogate in a key', { ['\ud800']: 1 }],
    ['undefined', { x: undefined }],
    ['a Date', { x: new Date() }],
    ['U+0000 (PostgreSQL cannot store it)', { x: 'a\u0000' }],
  ])('refuses %s', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(NotCanonicalizableError);
  });

  it('accepts a surrogate pair', () => {
    expect(canonicalJson({ x: '😀' })).toBe('{"x":"😀"}');
  });
});

describe('chainHash', () => {
  it('is SHA-256 of the previous hash bytes followed by the canonical JSON', () => {
    const record = { z: 1, a: 'x' };
    const expected = createHash('sha256')
      .update(Buffer.alloc(32))
      .update('{"a":"x","z":1}')
      .digest('hex');
    expect(chainHash(GENESIS_HASH, record)).toBe(expected);
  });

  it('changes when anything before it changes', () => {
    const h1 = chainHash(GENESIS_HASH, { n: 1 });
    const h2 = chainHash(h1, { n: 2 });
    expect(chainHash(chainHash(GENESIS_HASH, { n: 1.5 }), { n: 2 })).not.toBe(h2);
  });

  it('refuses a malformed previous hash', () => {
    expect(() => chainHash('ABC', {})).toThrow(/prev_hash/);
  });
});
