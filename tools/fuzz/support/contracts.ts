/**
 * The public surface of latchkey, discovered rather than listed: every RPC of
 * every service in every .proto file under proto/ (with its request message
 * descriptor), and every HTTP route of the Nest controllers of apps/* and
 * libs/service-kit (from Nest's route metadata). A new RPC or route is picked
 * up by the fuzz and isolation suites without editing them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import {
  GRPC_PACKAGES,
  type GrpcServiceName,
  PROTO_LOADER_OPTIONS,
  PROTO_ROOT,
} from '@latchkey/contracts';

export interface FieldInfo {
  /** Field name as in the .proto (snake_case). */
  name: string;
  /** Name in request objects (camelCase, PROTO_LOADER_OPTIONS). */
  key: string;
  number: number;
  /** descriptor type, e.g. TYPE_STRING, TYPE_MESSAGE. */
  type: string;
  repeated: boolean;
  /** Fully qualified message or enum name (no leading dot) for TYPE_MESSAGE / TYPE_ENUM. */
  typeName: string;
}

export interface MessageInfo {
  name: string;
  fields: FieldInfo[];
}

export interface RpcInfo {
  /** The service that serves it (registration, provisioning, auth, audit). */
  app: GrpcServiceName;
  /** e.g. latchkey.auth.v1.AdminService */
  service: string;
  method: string;
  /** e.g. latchkey.auth.v1.AdminService/GetUser — the key used in classification tables. */
  id: string;
  /** gRPC path: /latchkey.auth.v1.AdminService/GetUser */
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  request: MessageInfo;
  definition: MethodDefinition<object, object>;
}

export interface Contracts {
  rpcs: RpcInfo[];
  messages: Map<string, MessageInfo>;
  enums: Map<string, number[]>;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? walk(join(dir, e.name))
      : e.name.endsWith('.proto')
        ? [join(dir, e.name)]
        : [],
  );
}

interface RawField {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName?: string;
  jsonName?: string;
}

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
// proto-loader (keepCase false) gives descriptors with camelCase names: back to the .proto's.
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function messageInfo(name: string, descriptor: { field?: RawField[] }): MessageInfo {
  const scope = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
  return {
    name,
    fields: (descriptor.field ?? []).map((f) => ({
      name: snake(f.name),
      key: camel(f.name),
      number: f.number,
      type: f.type,
      repeated: f.label === 'LABEL_REPEATED',
      // Relative to the message's package until resolve() (proto-loader keeps them as written).
      typeName: f.typeName ? `${scope}\u0000${f.typeName.replace(/^\./, '')}` : '',
    })),
  };
}

/** Turns `scope\0Name` type references into the fully qualified names of `known` types. */
function resolve(m: MessageInfo, known: (name: string) => boolean): void {
  for (const f of m.fields) {
    if (!f.typeName.includes('\u0000')) continue;
    const [scope, ref] = f.typeName.split('\u0000') as [string, string];
    const candidates: string[] = [];
    for (let s = scope; ; s = s.slice(0, Math.max(0, s.lastIndexOf('.')))) {
      candidates.push(s ? `${s}.${ref}` : ref);
      if (!s) break;
    }
    f.typeName = candidates.find(known) ?? ref;
  }
}

let cached: Contracts | undefined;

/** Every RPC of every service defined under proto/latchkey. */
export function contracts(): Contracts {
  if (cached) return cached;
  const appOfPackage = new Map<string, GrpcServiceName>(
    Object.entries(GRPC_PACKAGES).map(([app, info]) => [info.package, app as GrpcServiceName]),
  );
  const rpcs: RpcInfo[] = [];
  const messages = new Map<string, MessageInfo>();
  const enums = new Map<string, number[]>();
  for (const file of walk(join(PROTO_ROOT, 'latchkey'))) {
    const def = loadSync(relative(PROTO_ROOT, file), PROTO_LOADER_OPTIONS);
    for (const [name, entry] of Object.entries(def)) {
      const typed = entry as { format?: string; type?: Record<string, unknown> };
      if (typed.format === 'Protocol Buffer 3 DescriptorProto') {
        messages.set(name, messageInfo(name, typed.type as { field?: RawField[] }));
        continue;
      }
      if (typed.format === 'Protocol Buffer 3 EnumDescriptorProto') {
        const values = (typed.type as { value: { number: number }[] }).value;
        enums.set(
          name,
          values.map((v) => v.number),
        );
        continue;
      }
      if (typed.format !== undefined) continue;
      // A service: an object of method definitions.
      const pkg = name.slice(0, name.lastIndexOf('.'));
      const app = appOfPackage.get(pkg);
      if (!app) throw new Error(`no service of GRPC_PACKAGES serves package ${pkg} (${name})`);
      for (const [method, m] of Object.entries(
        entry as Record<string, MethodDefinition<object, object>>,
      )) {
        // proto-loader lists each method twice (Name and name); keep the proto spelling.
        if (method !== m.originalName && method[0] !== method[0]!.toUpperCase()) continue;
        if (m.path !== `/${name}/${method}`) continue;
        const reqType = m.requestType as unknown as { type: { name: string; field?: RawField[] } };
        rpcs.push({
          app,
          service: name,
          method,
          id: `${name}/${method}`,
          path: m.path,
          requestStream: m.requestStream,
          responseStream: m.responseStream,
          request: messageInfo(`${pkg}.${reqType.type.name}`, reqType.type),
          definition: m,
        });
      }
    }
  }
  const known = (n: string) => messages.has(n) || enums.has(n);
  for (const m of messages.values()) resolve(m, known);
  for (const r of rpcs) resolve(r.request, known);
  // Several files import the same messages: keep one entry per RPC.
  const unique = new Map(rpcs.map((r) => [r.id, r]));
  cached = { rpcs: [...unique.values()], messages, enums };
  return cached;
}

export interface HttpRoute {
  app: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  /** Express-style path, e.g. /v1/tenants/:tenantId/devices */
  path: string;
  id: string;
}

const VERB = /@(Get|Post|Put|Delete|Patch)\(\s*(?:'([^']*)')?\s*\)/g;

function controllerFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? controllerFiles(join(dir, e.name))
      : e.name.endsWith('.ts') && !/\.(spec|e2e-spec)\.ts$/.test(e.name)
        ? [join(dir, e.name)]
        : [],
  );
}

/**
 * Every HTTP route of the services' Nest controllers in apps/<app>/src and
 * libs/service-kit/src (mounted by every service), read from the decorators
 * of the sources (`@Controller('base')` then `@Get('sub')`, ...). Reading the
 * sources rather than loading the classes keeps this free of the services'
 * dependencies; the HTTP fuzz suite checks that each route found is served.
 */
export function httpRoutes(root: string): HttpRoute[] {
  const routes: HttpRoute[] = [];
  const collect = (app: string, files: string[]) => {
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const parts = text.split(/@Controller\(/).slice(1);
      for (const part of parts) {
        const base = /^\s*(?:'([^']*)')?\s*\)/.exec(part)?.[1] ?? '';
        for (const m of part.matchAll(VERB)) {
          const method = m[1]!.toUpperCase() as HttpRoute['method'];
          const path = `/${[base, m[2] ?? ''].filter((p) => p && p !== '/').join('/')}`;
          routes.push({ app, method, path, id: `${app} ${method} ${path}` });
        }
      }
    }
  };
  const shared = controllerFiles(join(root, 'libs/service-kit/src'));
  for (const app of Object.keys(GRPC_PACKAGES)) {
    collect(app, controllerFiles(join(root, 'apps', app, 'src')));
    collect(app, shared);
  }
  return [...new Map(routes.map((r) => [r.id, r])).values()];
}
