import { pinProblem } from './pin-policy';

describe('PIN policy', () => {
  it.each([
    ['12345', /at least 6/],
    ['111111', /repeat/],
    ['123456', /sequence/],
    ['987654', /sequence/],
    ['abc\u0001de', /control/],
  ])('refuses %j', (pin, why) => {
    expect(pinProblem(pin)).toMatch(why);
  });

  it.each(['482915', 'correct horse', 'Zx9!kq'])('accepts %j', (pin) => {
    expect(pinProblem(pin)).toBeUndefined();
  });
});
