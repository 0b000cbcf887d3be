import { type ArgumentsHost, Logger } from '@nestjs/common';
import { DomainErrorFilter } from './exception-filter';

/** What the filter answers over HTTP for `exception`: status and problem body. */
function answer(exception: unknown): { status: number; body: Record<string, unknown> } {
  const out = { status: 0, body: {} as Record<string, unknown> };
  const res = {
    status(s: number) {
      out.status = s;
      return res;
    },
    type() {
      return res;
    },
    send(text: string) {
      out.body = JSON.parse(text) as Record<string, unknown>;
      return res;
    },
  };
  const host = {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => ({ originalUrl: '/x' }), getResponse: () => res }),
  } as unknown as ArgumentsHost;
  new DomainErrorFilter().catch(exception, host);
  return out;
}

/** An error as body-parser (http-errors) makes it. */
const parserError = (status: number, type: string, message: string) =>
  Object.assign(new Error(message), { status, statusCode: status, expose: true, type });

describe('DomainErrorFilter and the body parser', () => {
  it('answers a body over the limit with 400 REQUEST_TOO_LARGE, not 500', () => {
    const r = answer(parserError(413, 'entity.too.large', 'request entity too large'));
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ status: 400, reason: 'REQUEST_TOO_LARGE' });
  });

  it('answers an unsupported charset with 400 UNSUPPORTED_MEDIA_TYPE', () => {
    const r = answer(parserError(415, 'charset.unsupported', 'unsupported charset "UTF-16"'));
    expect(r.body).toMatchObject({ status: 400, reason: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('still answers an unexpected error with a 500 that hides its message', () => {
    // The filter logs it (with its message): keep that out of the test output.
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const r = answer(Object.assign(new Error('secret detail'), { status: 413 }));
    expect(r.status).toBe(500);
    expect(JSON.stringify(r.body)).not.toContain('secret detail');
    expect(logged).toHaveBeenCalled();
    logged.mockRestore();
  });
});
