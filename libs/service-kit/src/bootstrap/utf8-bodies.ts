/**
 * Request bodies are UTF-8 or refused. JSON exchanged between systems must be
 * UTF-8 (RFC 8259 §8.1), and so is every form this platform reads. The body
 * parser would otherwise decode `charset=utf-16` or `utf-32` too: a body of an
 * odd length then decodes to nothing and reaches the controller as `{}`, i.e.
 * "every field at its default", which a PUT would store.
 *
 * Registered before the body parser; its refusal is shaped like the parser's own
 * (http-errors with `expose` and a `type`), which the exception filter answers
 * as UNSUPPORTED_MEDIA_TYPE.
 */
import type { IncomingMessage } from 'node:http';

const UTF8 = new Set(['utf-8', 'utf8']);

/** The charset parameter of a Content-Type header, lower-cased and unquoted; undefined if none. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    return param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return undefined;
}

/** The refusal for a request whose body is declared in a charset other than UTF-8; undefined if it is fine. */
export function nonUtf8BodyError(req: Pick<IncomingMessage, 'headers'>): Error | undefined {
  const charset = charsetOf(req.headers['content-type']);
  if (charset === undefined || UTF8.has(charset)) return undefined;
  return Object.assign(
    new Error(`unsupported charset "${charset.slice(0, 40)}": request bodies must be UTF-8`),
    { status: 415, statusCode: 415, expose: true, type: 'charset.unsupported', charset },
  );
}

/** Express middleware: refuses a body declared in any charset but UTF-8 before it is parsed. */
export function refuseNonUtf8Bodies() {
  return (req: IncomingMessage, _res: unknown, next: (err?: unknown) => void): void => {
    next(nonUtf8BodyError(req));
  };
}
