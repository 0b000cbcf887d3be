/**
 * Fuzzing every HTTP route of the four services (found in the controllers'
 * decorators, see support/contracts.ts) with fast-check: malformed path
 * parameters (injection-shaped, invalid percent-encoding, huge), query strings
 * and bodies (broken or deep JSON, JSON of the wrong shape, every string value
 * poisoned, odd content types), with no token, a garbage one, a user's or an
 * admin's.
 *
 * For every case: no 5xx and an answer at all; no 2xx from a route that
 * changes state. For every route: still healthy afterwards, nothing stored
 * changed. Mutating routes never get the fuzz tenant's real resource ids in
 * their path (only its tenant id), so every request they see is malformed.
 *
 * Cases per route: LATCHKEY_FUZZ_RUNS (see grpc-fuzz.e2e-spec.ts).
 */
import fc from 'fast-check';
import { GRPC_PACKAGES, type GrpcServiceName } from '@latchkey/contracts';
import { httpBase, REPO_ROOT } from '@latchkey/testing';
import { contracts, type HttpRoute, httpRoutes } from './support/contracts';
import { deepJson, hugeString, identifier, jws, malformedString } from './support/arbitraries';
import { healthy } from './support/probes';
import { StateProbe } from './support/state';
import { clients, type Clients, newTenant, type TenantFixture } from './support/tenants';

const RUNS = Number(process.env.LATCHKEY_FUZZ_RUNS ?? 15);
const SEED = process.env.LATCHKEY_FUZZ_SEED ? Number(process.env.LATCHKEY_FUZZ_SEED) : undefined;
const APPS = process.env.LATCHKEY_FUZZ_APPS?.split(',').map((s) => s.trim());

const routes = httpRoutes(REPO_ROOT).filter((r) => !APPS || APPS.includes(r.app));

/** The field names of an app's request messages and of their sub-messages. */
function appKeys(app: string): string[] {
  const c = contracts();
  const keys = new Set<string>();
  for (const rpc of c.rpcs.filter((r) => r.app === app))
    for (const f of rpc.request.fields) {
      keys.add(f.key);
      for (const g of c.messages.get(f.typeName)?.fields ?? []) keys.add(g.key);
    }
  return [...keys].sort();
}

/** Every field name of the contracts: the keys query strings are made of. */
const KNOWN_KEYS = [
  ...new Set([...contracts().messages.values()].flatMap((m) => m.fields.map((f) => f.key))),
].sort();

let c: Clients;
let t: TenantFixture;
let probe: StateProbe;

beforeAll(async () => {
  c = clients();
  t = await newTenant(c, 'hfuzz');
  probe = await StateProbe.open();
}, 180_000);

afterAll(async () => {
  c?.close();
  await probe?.close();
});

function encode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%E0%A4%A'; // a lone surrogate: send a broken escape instead
  }
}

const rawSegment = fc.constantFrom('%zz', '%', '%%00', '%00', '%2e%2e', '..', '%2F', '%C0%AF');

interface HttpCase {
  url: string;
  body?: string;
  contentType?: string;
  authorization?: string;
}

function caseArb(route: HttpRoute): fc.Arbitrary<HttpCase> {
  const mutating = route.method !== 'GET';
  const real: Record<string, string> = {
    tenantId: t.tenantId,
    deviceId: t.deviceId,
    userId: t.userId,
    credentialId: t.credentialId,
    joinTokenId: t.joinTokenId,
  };
  const params = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
  const paramArb = (name: string): fc.Arbitrary<string> => {
    const malformed = fc.oneof(
      { arbitrary: identifier.map(encode), weight: 4 },
      { arbitrary: malformedString.map((s) => encode(s.slice(0, 2000))), weight: 2 },
      { arbitrary: rawSegment, weight: 1 },
    );
    const usable = real[name] && (!mutating || name === 'tenantId');
    return usable ? fc.oneof(fc.constant(real[name]!), malformed) : malformed;
  };
  const path = fc.tuple(...params.map(paramArb)).map((values) => {
    let i = 0;
    return route.path.replace(/:([A-Za-z]+)/g, () => values[i++]!);
  });
  const query = fc
    .dictionary(
      fc.oneof(fc.constantFrom(...KNOWN_KEYS), fc.string({ maxLength: 10 })),
      malformedString.map((s) => s.slice(0, 3000)),
      { maxKeys: 4 },
    )
    .map((q) =>
      Object.keys(q).length
        ? `?${Object.entries(q)
            .map(([k, v]) => `${encode(k)}=${encode(v)}`)
            .join('&')}`
        : '',
    );
  // Every field name of the app's requests (and of their sub-messages), each with a value of
  // the wrong type (an array, an object, text with U+0000), one of them sometimes huge: whatever
  // fields the route reads, each one is wrong.
  const wrongValue = fc.oneof(
    fc.array(
      malformedString.map((s) => s.slice(0, 200)),
      { minLength: 1, maxLength: 2 },
    ),
    fc.dictionary(
      fc.string({ maxLength: 5 }),
      malformedString.map((s) => s.slice(0, 200)),
      {
        minKeys: 1,
        maxKeys: 2,
      },
    ),
    fc.string({ maxLength: 20 }).map((s) => `${s}\u0000`),
  );
  const keys = appKeys(route.app);
  const poisonedObject = fc
    .tuple(
      fc.tuple(...keys.map(() => wrongValue)),
      fc.option(fc.tuple(fc.constantFrom(...keys), fc.oneof(hugeString, deepJson)), {
        nil: undefined,
      }),
    )
    .map(([values, extreme]) => {
      const o: Record<string, unknown> = {};
      keys.forEach((k, i) => (o[k] = values[i]));
      if (!extreme) return JSON.stringify(o);
      const [key, text] = extreme;
      delete o[key];
      // A deep JSON text goes in as JSON (a value nested thousands deep), a huge one as a string.
      const value = text.startsWith('[') || text.startsWith('{"a"') ? text : JSON.stringify(text);
      return `${JSON.stringify(o).slice(0, -1)}${keys.length > 1 ? ',' : ''}${JSON.stringify(key)}:${value}}`;
    });
  // Not among the bodies: a JSON array, or an object of unknown keys only — the HTTP faces
  // spread the body into the request and ignore unknown keys, so those are valid requests
  // with every field defaulted (POST join-tokens then creates a token).
  const body = fc.oneof(
    { arbitrary: poisonedObject, weight: 5 },
    {
      arbitrary: fc.constantFrom(
        '{',
        '{"tenantId": ',
        '[',
        'nul',
        '"',
        '{"a":1,}',
        '\u0000',
        '{"a":1}}',
        '',
      ),
      weight: 1,
    },
    { arbitrary: hugeString, weight: 1 },
  );
  // Mostly JSON, in UTF-8 or a charset that must be refused; sometimes another type. A body of
  // another type is not parsed as JSON: routes whose fields all have defaults must refuse it
  // rather than read it as an empty request (jsonObjectBody), the others fail validation.
  const contentType = fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 8 },
    {
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'application/json; charset=nope',
      ),
      weight: 1,
    },
    {
      arbitrary: fc.constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/octet-stream',
      ),
      weight: 4,
    },
  );
  const authorization = fc.oneof(
    fc.constant(undefined),
    fc.constant(`Bearer ${t.adminToken}`),
    fc.constant(`Bearer ${t.userToken}`),
    jws.map((s) => `Bearer ${s.slice(0, 4096)}`),
    fc.constantFrom('Bearer', 'Basic YTpi', 'Bearer  a b', `bearer ${'x'.repeat(100)}`),
  );
  return fc
    .tuple(path, query, mutating ? body : fc.constant(undefined), contentType, authorization)
    .map(([p, q, b, ct, auth]) => ({
      url: `${httpBase(route.app)}${p}${q}`,
      body: b,
      contentType: b === undefined ? undefined : ct,
      authorization: auth,
    }));
}

async function send(route: HttpRoute, k: HttpCase): Promise<number> {
  const headers: Record<string, string> = {};
  if (k.contentType) headers['content-type'] = k.contentType;
  if (k.authorization) headers.authorization = k.authorization;
  try {
    const res = await fetch(k.url, {
      method: route.method,
      headers,
      body: k.body,
      signal: AbortSignal.timeout(20_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0; // no answer: reset, refused or timed out
  }
}

const fullService = (app: string) => {
  const info = GRPC_PACKAGES[app as GrpcServiceName];
  return `${info.package}.${info.service}`;
};

describe.each(routes.map((r) => [r.id, r] as const))('fuzz %s', (_id, route) => {
  it(
    `answers ${RUNS} malformed requests without 5xx, stays healthy, changes nothing`,
    async () => {
      const before = await probe.fingerprint([t.tenantId]);
      let answered = 0;
      await fc.assert(
        fc.asyncProperty(caseArb(route), async (k) => {
          const code = await send(route, k);
          const what = `${route.method} ${k.url.slice(0, 300)} (body ${k.body?.length ?? 0} chars, ${k.contentType ?? 'no type'}, ${k.authorization ? 'token' : 'no token'}) → ${code}`;
          if (code === 0 || code >= 500) throw new Error(`no clean answer: ${what}`);
          if (route.method !== 'GET' && code < 300)
            throw new Error(`accepted a malformed request: ${what}`);
          answered++;
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
      expect(answered).toBe(RUNS);
      expect(await healthy(route.app, fullService(route.app))).toEqual({
        grpc: 'SERVING',
        http: 200,
      });
      expect(await probe.fingerprint([t.tenantId])).toEqual(before);
    },
    60_000 + RUNS * 500,
  );
});

it('covers every HTTP route of the controllers', () => {
  expect(routes.length).toBeGreaterThanOrEqual(APPS ? 1 : 55);
});
