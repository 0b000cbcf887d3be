import { DomainError } from './domain-error';
import { jsonObjectBody } from './validation';

const req = (headers: Record<string, string>) => ({ headers });

function refusal(fn: () => unknown): { reason: string; message: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    return err as DomainError;
  }
  throw new Error('accepted');
}

describe('jsonObjectBody', () => {
  const json = { 'content-type': 'application/json', 'content-length': '9' };

  it('passes a JSON object sent as JSON (also +json types)', () => {
    expect(jsonObjectBody(req(json), { a: 1 })).toEqual({ a: 1 });
    expect(
      jsonObjectBody(req({ ...json, 'content-type': 'application/merge-patch+json' }), {}),
    ).toEqual({});
  });

  it.each([
    ['another content type', { 'content-type': 'text/plain', 'content-length': '3' }, {}],
    ['no content type', { 'content-length': '2' }, {}],
    ['an empty body the parser read as {}', { ...json, 'content-length': '0' }, {}],
    ['no body at all', { 'content-type': 'application/json' }, undefined],
    ['an array', json, [1]],
    ['a string', json, 'x'],
  ])('refuses %s with BODY_NOT_JSON', (_what, headers, body) => {
    expect(refusal(() => jsonObjectBody(req(headers), body)).reason).toBe('BODY_NOT_JSON');
  });

  it('refuses an empty chunked body by the bytes the parser read', () => {
    const chunked = {
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      rawBody: Buffer.alloc(0),
    };
    expect(refusal(() => jsonObjectBody(chunked, {})).reason).toBe('BODY_NOT_JSON');
    expect(jsonObjectBody({ ...chunked, rawBody: Buffer.from('{}') }, {})).toEqual({});
  });
});
