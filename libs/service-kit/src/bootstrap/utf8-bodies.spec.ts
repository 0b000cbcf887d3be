import { DomainErrorFilter } from '../errors/exception-filter';
import type { ArgumentsHost } from '@nestjs/common';
import { charsetOf, nonUtf8BodyError, refuseNonUtf8Bodies } from './utf8-bodies';

const req = (contentType?: string) => ({
  headers: contentType === undefined ? {} : { 'content-type': contentType },
});

describe('charsetOf', () => {
  it.each([
    [undefined, undefined],
    ['application/json', undefined],
    ['application/json; charset=UTF-8', 'utf-8'],
    ['application/json;charset="utf-16"', 'utf-16'],
    ['application/json; foo=bar; Charset = latin1 ', 'latin1'],
    ['application/json; charset', undefined],
  ])('%s → %s', (header, charset) => {
    expect(charsetOf(header)).toBe(charset);
  });
});

describe('refuseNonUtf8Bodies', () => {
  it.each(['application/json', 'application/json; charset=utf-8', 'text/plain; charset="UTF8"'])(
    'lets %s through',
    (type) => {
      const next = jest.fn();
      refuseNonUtf8Bodies()(req(type) as never, {}, next);
      expect(next).toHaveBeenCalledWith(undefined);
    },
  );

  it.each([
    'application/json; charset=utf-16',
    'application/json; charset=UTF-32LE',
    'application/json; charset=latin1',
    'application/x-www-form-urlencoded; charset=iso-8859-1',
    'application/json; charset=nope',
  ])('refuses %s as the body parser would, answered as UNSUPPORTED_MEDIA_TYPE', (type) => {
    const next = jest.fn();
    refuseNonUtf8Bodies()(req(type) as never, {}, next);
    const err = next.mock.calls[0][0] as Error & { status: number; type: string };
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ status: 415, expose: true, type: 'charset.unsupported' });

    // And the exception filter turns it into a client error with that reason.
    let sent = '';
    const res = {
      status: () => res,
      type: () => res,
      send: (text: string) => (sent = text),
    };
    const host = {
      getType: () => 'http',
      switchToHttp: () => ({ getRequest: () => ({ originalUrl: '/x' }), getResponse: () => res }),
    } as unknown as ArgumentsHost;
    new DomainErrorFilter().catch(err, host);
    expect(JSON.parse(sent)).toMatchObject({ status: 400, reason: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('keeps a huge charset out of the message', () => {
    const err = nonUtf8BodyError(req(`application/json; charset=${'x'.repeat(5000)}`));
    expect(err?.message.length).toBeLessThan(120);
  });
});
