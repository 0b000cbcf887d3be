/**
 * The services' HTTPS JSON APIs behind the same `ServiceClient` as gRPC: each
 * RPC the agent makes is mapped to its route, and the answer to the shape
 * proto-loader gives for the RPC's response (timestamps as ISO 8601 text), so
 * commands do not know which transport they use. Refusals are RFC 9457
 * problem+json with the same `reason` as the gRPC status; they become the same
 * `ServiceCallError` (HTTP status mapped back to the gRPC code).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { status } from '@grpc/grpc-js';
import type { GrpcServiceName } from '@latchkey/contracts/grpc-packages';
import type { Endpoints } from './endpoints';
import { ServiceCallError, type ServiceClient } from './service-client';

type Json = Record<string, unknown>;

interface Route {
  verb: 'GET' | 'POST' | 'DELETE';
  path: (req: Json) => string;
  /** The JSON body (default: the request as it is); undefined for none. */
  body?: (req: Json) => Json | undefined;
  /** The answer in the RPC's response shape (default: as it is). */
  answer?: (res: Json) => Json;
  /** Headers the request carries (a device assertion of a GET goes in `authorization`). */
  headers?: (req: Json) => Record<string, string>;
}

const seg = (v: unknown) => encodeURIComponent(String(v ?? ''));

/** OAuth token answer of POST /v1/token → KeySessionTokens of SignInWithKey / RefreshWithPrt. */
function keySessionTokens(res: Json, now = Date.now()): Json {
  const at = (seconds: unknown) => new Date(now + Number(seconds ?? 0) * 1000).toISOString();
  return {
    tokens: {
      idToken: res.id_token ?? '',
      accessToken: res.access_token,
      tokenType: res.token_type,
      accessTokenExpireTime: at(res.expires_in),
      refreshToken: res.refresh_token,
      refreshTokenExpireTime: at(res.refresh_token_expires_in),
      sessionId: res.session_id,
    },
    ...(res.session_key_jwe !== undefined ? { sessionKeyJwe: res.session_key_jwe } : {}),
  };
}

const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The routes of the RPCs the agent makes (apps/<service>/src/**\/*.http.controller.ts). */
export const HTTP_ROUTES: Record<GrpcServiceName, Record<string, Route>> = {
  registration: {
    RegisterDevice: {
      verb: 'POST',
      path: () => '/v1/devices',
      // The JSON API names the join type `joined` / `registered` (gRPC: JOIN_TYPE_JOINED, …).
      body: (r) => ({
        ...r,
        joinType: String(r.joinType ?? '')
          .replace(/^JOIN_TYPE_/, '')
          .toLowerCase(),
      }),
    },
    GetDevice: {
      verb: 'GET',
      path: (r) => `/v1/tenants/${seg(r.tenantId)}/devices/${seg(r.deviceId)}`,
    },
    // The device's own record: its device assertion in the authorization header.
    GetSelfDevice: {
      verb: 'GET',
      path: () => '/v1/devices/self',
      headers: (r) => ({ authorization: `DeviceAssertion ${String(r.deviceAssertion ?? '')}` }),
    },
  },
  provisioning: {
    BeginProvisioning: { verb: 'POST', path: () => '/v1/provisioning/challenges' },
    CompleteProvisioning: { verb: 'POST', path: () => '/v1/credentials' },
    ListCredentials: {
      verb: 'GET',
      path: (r) => {
        const { tenantId, ...filters } = r;
        const query = new URLSearchParams(
          Object.entries(filters)
            .filter(([, v]) => v !== undefined && v !== '')
            .map(([k, v]): [string, string] => [k, String(v)]),
        ).toString();
        return `/v1/tenants/${seg(tenantId)}/credentials${query ? `?${query}` : ''}`;
      },
    },
    RevokeCredential: {
      verb: 'POST',
      path: (r) => `/v1/tenants/${seg(r.tenantId)}/credentials/${seg(r.credentialId)}/revoke`,
      body: (r) => ({ reason: r.reason }),
    },
    DeleteCredential: {
      verb: 'DELETE',
      path: (r) => `/v1/devices/${seg(r.deviceId)}/credentials/${seg(r.credentialId)}`,
      body: (r) => ({ deviceAssertion: r.deviceAssertion }),
    },
  },
  auth: {
    SignInWithPassword: { verb: 'POST', path: () => '/v1/sign-in/password' },
    EnrollTotp: { verb: 'POST', path: () => '/v1/sign-in/totp-enrollment' },
    CompleteMfa: { verb: 'POST', path: () => '/v1/sign-in/mfa' },
    GetNonce: { verb: 'POST', path: () => '/v1/nonces' },
    SignInWithKey: {
      verb: 'POST',
      path: () => '/v1/token',
      body: (r) => ({ grant_type: JWT_BEARER_GRANT, request: r.request }),
      answer: (res) => keySessionTokens(res),
    },
    RefreshWithPrt: {
      verb: 'POST',
      path: () => '/v1/token',
      body: (r) => ({ grant_type: 'refresh_token', refresh_token: r.refreshToken, proof: r.proof }),
      answer: (res) => keySessionTokens(res),
    },
  },
  audit: {},
};

/** HTTP status of a problem → the gRPC code of the same refusal (libs/service-kit HTTP_STATUS, reversed). */
const GRPC_CODE_OF_HTTP: Record<number, status> = {
  400: status.INVALID_ARGUMENT,
  401: status.UNAUTHENTICATED,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  409: status.ALREADY_EXISTS,
  412: status.FAILED_PRECONDITION,
  429: status.RESOURCE_EXHAUSTED,
  500: status.INTERNAL,
  502: status.UNAVAILABLE,
  503: status.UNAVAILABLE,
  504: status.UNAVAILABLE,
};

/** The HTTP(S) base URL of a service. */
export function baseUrlOf(service: GrpcServiceName, endpoints: Endpoints): string {
  const url = {
    registration: endpoints.registrationUrl,
    provisioning: endpoints.provisioningUrl,
    auth: endpoints.authUrl,
    audit: endpoints.auditUrl,
  }[service];
  if (!url) throw new Error(`no HTTP(S) address of the ${service} service`);
  return url.replace(/\/$/, '');
}

function problemOf(text: string): { reason?: string; detail?: string } {
  try {
    const p = JSON.parse(text) as { reason?: unknown; detail?: unknown; title?: unknown };
    return {
      reason: typeof p.reason === 'string' ? p.reason : undefined,
      detail:
        typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : undefined,
    };
  } catch {
    return {};
  }
}

/** JSON carries bytes (TPM attestations) as base64 text. */
function jsonBody(body: Json): string {
  return JSON.stringify(body, (_key, value: unknown) => {
    const v = value as { type?: unknown; data?: unknown } | null;
    if (v && v.type === 'Buffer' && Array.isArray(v.data))
      return Buffer.from(v.data as number[]).toString('base64');
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    return value;
  });
}

/** One JSON request (the CA of `--tls-ca` for https URLs); resolves with the status and the body text. */
function send(
  url: URL,
  verb: string,
  body: string | undefined,
  headers: Record<string, string>,
  ca: Buffer | undefined,
  timeoutMs: number,
): Promise<{ statusCode: number; text: string }> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: verb,
        headers: {
          accept: 'application/json, application/problem+json',
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
          ...headers,
        },
        ...(url.protocol === 'https:' && ca ? { ca } : {}),
        timeout: timeoutMs,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            statusCode: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function httpsServiceClient(
  service: GrpcServiceName,
  endpoints: Endpoints,
  timeoutMs = 15_000,
): ServiceClient {
  const base = baseUrlOf(service, endpoints);
  const ca =
    endpoints.transport.mode === 'tls' && endpoints.transport.caFile
      ? readFileSync(endpoints.transport.caFile)
      : undefined;
  return {
    async call(method, request, accessToken) {
      const route = HTTP_ROUTES[service][method];
      if (!route) throw new Error(`${service}.${method} is not mapped to the HTTPS JSON API`);
      const req = request as Json;
      const body = route.body ? route.body(req) : route.verb === 'GET' ? undefined : req;
      const url = new URL(base + route.path(req));
      let answer: { statusCode: number; text: string };
      try {
        answer = await send(
          url,
          route.verb,
          body === undefined ? undefined : jsonBody(body),
          {
            ...route.headers?.(req),
            ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
          },
          ca,
          timeoutMs,
        );
      } catch (err) {
        const e = err as Error & { code?: string };
        throw new ServiceCallError(
          service,
          method,
          e.code === 'ETIMEDOUT' ? status.DEADLINE_EXCEEDED : status.UNAVAILABLE,
          undefined,
          `${url.origin}: ${e.message}`,
        );
      }
      const { statusCode, text } = answer;
      if (statusCode >= 200 && statusCode < 300) {
        const json = (text ? JSON.parse(text) : {}) as Json;
        return route.answer ? route.answer(json) : json;
      }
      const problem = problemOf(text);
      throw new ServiceCallError(
        service,
        method,
        GRPC_CODE_OF_HTTP[statusCode] ?? status.UNKNOWN,
        problem.reason,
        problem.detail ?? `HTTP ${statusCode}`,
      );
    },
    close: () => undefined,
  };
}
