/**
 * fast-check generators of malformed input for latchkey's RPCs and routes:
 * wrong types, huge strings, deep JSON, invalid base64 / PEM / DER / JWS / JWK,
 * injection-shaped identifiers, and protobuf frames that are random,
 * truncated or carry fields with the wrong wire type.
 */
import fc from 'fast-check';
import type { Contracts, FieldInfo, MessageInfo } from './contracts';

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

/** Longer than every documented string limit of the contracts (the largest is 1024). */
export const HUGE_MIN = 70_000;

export const hugeString: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: HUGE_MIN, max: 300_000 }), fc.constantFrom('A', 'é', '💥', '[', '%'))
  .map(([n, c]) => c.repeat(Math.ceil(n / c.length)));

export const deepJson: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 200, max: 20_000 }), fc.constantFrom('array', 'object'))
  .map(([d, kind]) =>
    kind === 'array' ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d),
  );

const weirdIds = fc.constantFrom(
  '',
  ' ',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  "' OR '1'='1",
  '"; DROP TABLE users; --',
  '../../../../etc/passwd',
  '%00',
  'null',
  'undefined',
  '[object Object]',
  '__proto__',
  'constructor',
  '-1',
  '9'.repeat(40),
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\u202E',
  '${jndi:ldap://x}',
  '{{7*7}}',
);

export const identifier: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  weirdIds,
  fc.string({ maxLength: 40 }),
  fc.hexaString({ minLength: 1, maxLength: 64 }),
);

const base64ish: fc.Arbitrary<string> = fc.oneof(
  fc.base64String({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map(b64url),
  fc.string({ maxLength: 80 }).map((s) => `${s}!*~%`),
  fc.constantFrom('', '=', '==', '===', 'A', 'AB=', '-_-_', '____', 'AQAB', '====AAAA'),
);

/** Bytes that look like DER: SEQUENCEs with lying lengths, indefinite nesting, random tails. */
export const derBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 256 }))
    .map(([len, tail]) => Uint8Array.from([0x30, 0x82, len >> 8, len & 0xff, ...tail])),
  fc.integer({ min: 1, max: 4000 }).map((depth) => {
    const out = new Uint8Array(depth * 2);
    for (let i = 0; i < depth; i++) out.set([0x30, 0x80], i * 2);
    return out;
  }),
  fc
    .uint8Array({ maxLength: 64 })
    .map((b) => Uint8Array.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, ...b])),
);

export const pem: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(
      'CERTIFICATE REQUEST',
      'NEW CERTIFICATE REQUEST',
      'CERTIFICATE',
      'PUBLIC KEY',
      'RSA PUBLIC KEY',
      'PRIVATE KEY',
      'X509 CRL',
      'EC PARAMETERS',
      '',
    ),
    fc.oneof(
      derBytes.map((b) => Buffer.from(b).toString('base64')),
      base64ish,
    ),
    fc.boolean(),
    fc.constantFrom('\n', '\r\n', '', ' '),
  )
  .map(
    ([label, body, closed, nl]) =>
      `-----BEGIN ${label}-----${nl}${body.replace(/(.{64})/g, `$1${nl}`)}${nl}${closed ? `-----END ${label}-----${nl}` : ''}`,
  );

const jsonText: fc.Arbitrary<string> = fc.oneof(
  fc.json({ maxDepth: 3 }),
  deepJson,
  fc.constantFrom(
    '{',
    '[',
    '{"a":',
    'nul',
    '"',
    '{}',
    '[]',
    'null',
    '1e999',
    '{"__proto__":{"x":1}}',
  ),
);

export const jwsHeader: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    alg: fc.constantFrom(
      'none',
      'None',
      'HS256',
      'ES256',
      'RS256',
      'PS256',
      'EdDSA',
      'ES512',
      '',
      'x',
    ),
    kid: fc.oneof(identifier, fc.constant('../../../dev/null')),
    typ: fc.constantFrom('JWT', 'at+jwt', 'dpop+jwt', ''),
    x5c: fc.array(base64ish, { maxLength: 3 }),
    jwk: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 8 })),
    crit: fc.array(fc.string({ maxLength: 6 }), { maxLength: 2 }),
    b64: fc.boolean(),
    ctx: base64ish,
  },
  { requiredKeys: [] },
);

export const jws: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(
      fc.oneof(
        jwsHeader.map((h) => b64url(JSON.stringify(h))),
        base64ish,
      ),
      fc.oneof(jsonText.map(b64url), base64ish),
      base64ish,
    )
    .map(([h, p, s]) => `${h}.${p}.${s}`),
  fc.array(base64ish, { minLength: 0, maxLength: 7 }).map((parts) => parts.join('.')),
  fc.constantFrom('.', '..', '...', 'a.b', 'eyJhbGciOiJub25lIn0.e30.', 'eyJ.eyJ.eyJ'),
);

export const jwk: fc.Arbitrary<string> = fc.oneof(
  fc
    .record(
      {
        kty: fc.constantFrom('RSA', 'EC', 'oct', 'OKP', '', 'rsa', 'ec'),
        crv: fc.constantFrom('P-256', 'P-384', 'P-521', 'secp256k1', 'Ed25519', 'X25519', 'x'),
        alg: fc.constantFrom('RS256', 'ES256', 'none', 'HS256'),
        x: base64ish,
        y: base64ish,
        n: base64ish,
        e: fc.constantFrom('AQAB', 'AA', '', 'AQ', 'AAAAAAAAAAAAAAAAAAAAAQ'),
        d: base64ish,
        k: base64ish,
        use: fc.constantFrom('sig', 'enc', ''),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o)),
  jsonText,
);

/** Any malformed string (each of the shapes above, plus random text). */
export const malformedString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 64 }), weight: 3 },
  { arbitrary: fc.fullUnicodeString({ maxLength: 64 }), weight: 2 },
  { arbitrary: identifier, weight: 3 },
  { arbitrary: hugeString, weight: 1 },
  { arbitrary: deepJson, weight: 1 },
  { arbitrary: pem, weight: 2 },
  { arbitrary: jws, weight: 2 },
  { arbitrary: jwk, weight: 2 },
  { arbitrary: base64ish, weight: 1 },
  { arbitrary: jsonText, weight: 1 },
);

/**
 * A value no field of the contracts accepts: longer than every documented
 * limit, or with a NUL character (which PostgreSQL text cannot store).
 */
export const poison: fc.Arbitrary<string> = fc.oneof(
  hugeString,
  fc
    .tuple(malformedString, fc.string({ maxLength: 8 }))
    .map(([a, b]) => `${a.slice(0, 200)}\u0000${b}`),
);

const int32 = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31), 501, 10_001),
);
const int64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  fc.constantFrom('0', '-1', '9223372036854775807', '-9223372036854775808'),
);

/** Per-field hints: valid values (e.g. the fuzz tenant's real ids) mixed into the malformed ones. */
export type Hints = Record<string, fc.Arbitrary<unknown>>;

function fieldArb(f: FieldInfo, c: Contracts, hints: Hints, depth: number): fc.Arbitrary<unknown> {
  let arb: fc.Arbitrary<unknown>;
  switch (f.type) {
    case 'TYPE_STRING': {
      // Inside sub-messages (which may be repeated a thousand times) strings stay short.
      const text = depth > 0 ? malformedString.map((s) => s.slice(0, 256)) : malformedString;
      arb = hints[f.key] ? fc.oneof(hints[f.key]!, text) : text;
      break;
    }
    case 'TYPE_BYTES':
      arb = derBytes.map((b) => Buffer.from(b));
      break;
    case 'TYPE_BOOL':
      arb = fc.boolean();
      break;
    case 'TYPE_INT64':
    case 'TYPE_UINT64':
    case 'TYPE_SINT64':
    case 'TYPE_FIXED64':
    case 'TYPE_SFIXED64':
      arb = int64;
      break;
    case 'TYPE_ENUM':
      arb = fc.oneof(
        fc.constantFrom(...(c.enums.get(f.typeName) ?? [0])),
        fc.integer({ min: -3, max: 1000 }),
      );
      break;
    case 'TYPE_MESSAGE': {
      const sub = c.messages.get(f.typeName);
      arb =
        sub && depth < 3
          ? messageArb(sub, c, hints, depth + 1)
          : fc.constant({} as Record<string, unknown>);
      break;
    }
    case 'TYPE_DOUBLE':
    case 'TYPE_FLOAT':
      arb = fc.double();
      break;
    default:
      arb = int32;
  }
  return f.repeated
    ? fc.oneof(
        { arbitrary: fc.array(arb, { maxLength: 3 }), weight: 5 },
        { arbitrary: fc.array(arb, { minLength: 1001, maxLength: 1200 }), weight: 1 },
      )
    : arb;
}

/** A request object (camelCase keys, as proto-loader takes them) with any subset of fields set. */
export function messageArb(
  m: MessageInfo,
  c: Contracts,
  hints: Hints,
  depth = 0,
): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of m.fields) model[f.key] = fieldArb(f, c, hints, depth);
  return fc.record(model, { requiredKeys: [] });
}

/** Paths (key lists) of the string fields of a message, one level into sub-messages. */
export function stringPaths(m: MessageInfo, c: Contracts): string[][] {
  const out: string[][] = [];
  for (const f of m.fields) {
    if (f.repeated) continue;
    if (f.type === 'TYPE_STRING') out.push([f.key]);
    else if (f.type === 'TYPE_MESSAGE') {
      const sub = c.messages.get(f.typeName);
      for (const g of sub?.fields ?? [])
        if (g.type === 'TYPE_STRING' && !g.repeated) out.push([f.key, g.key]);
    }
  }
  return out;
}

/** A request with one string field (chosen by fast-check) set to a poison value. */
export function poisonedRequestArb(
  m: MessageInfo,
  c: Contracts,
  hints: Hints,
): fc.Arbitrary<Record<string, unknown>> {
  const paths = stringPaths(m, c);
  const base = messageArb(m, c, hints);
  if (paths.length === 0) return base;
  return fc.tuple(base, fc.constantFrom(...paths), poison).map(([req, path, value]) => {
    const out: Record<string, unknown> = { ...req };
    if (path.length === 1) out[path[0]!] = value;
    else
      out[path[0]!] = {
        ...((out[path[0]!] as Record<string, unknown> | undefined) ?? {}),
        [path[1]!]: value,
      };
    return out;
  });
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** One field of `m` encoded with a wire type its declaration does not have, or a bad tag. */
export function wrongWireTypeArb(m: MessageInfo): fc.Arbitrary<Buffer> {
  const numbers = m.fields.length ? m.fields.map((f) => f.number) : [1];
  return fc
    .tuple(
      fc.constantFrom(...numbers, 0, 19000, 536870911),
      fc.integer({ min: 0, max: 7 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    )
    .map(([num, wt, payload, lyingLength]) => {
      const tag = varint(num * 8 + wt);
      switch (wt) {
        case 2:
          return Buffer.from([...tag, ...varint(lyingLength), ...payload]);
        case 1:
          return Buffer.from([...tag, ...payload.slice(0, 5)]);
        default:
          return Buffer.from([...tag, ...payload]);
      }
    });
}

/** A protobuf frame that is random, a truncated request, or a field with the wrong wire type. */
export function rawFrameArb(
  m: MessageInfo,
  c: Contracts,
  serialize: (req: object) => Buffer,
): fc.Arbitrary<Buffer> {
  const truncated = fc
    .tuple(messageArb(m, c, {}), fc.double({ min: 0, max: 1, noNaN: true }))
    .map(([req, at]) => {
      let full: Buffer;
      try {
        full = serialize(req);
      } catch {
        full = Buffer.from([0x0a, 0x05, 0x61]);
      }
      if (full.length < 2) return Buffer.from([0x0a, 0x05, 0x61]);
      return full.subarray(0, Math.max(1, Math.min(full.length - 1, Math.floor(full.length * at))));
    });
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
    truncated,
    wrongWireTypeArb(m),
  );
}
