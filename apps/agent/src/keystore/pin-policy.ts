/** The local PIN rules (Windows Hello's defaults: at least 6 characters, digits allowed, no trivial PINs). */
export interface PinPolicy {
  minLength: number;
  maxLength: number;
  /** Refuse PINs made of one repeated character or a plain ascending/descending run. */
  refuseTrivial: boolean;
}

export const DEFAULT_PIN_POLICY: PinPolicy = { minLength: 6, maxLength: 127, refuseTrivial: true };

/** Why the PIN is not acceptable, or undefined when it is. */
export function pinProblem(
  pin: string,
  policy: PinPolicy = DEFAULT_PIN_POLICY,
): string | undefined {
  const chars = [...pin];
  if (chars.length < policy.minLength)
    return `the PIN must have at least ${policy.minLength} characters`;
  if (chars.length > policy.maxLength)
    return `the PIN must have at most ${policy.maxLength} characters`;
  if (chars.some((c) => c.codePointAt(0)! < 0x20 || c === '\u007f'))
    return 'the PIN must not contain control characters';
  if (policy.refuseTrivial) {
    const codes = chars.map((c) => c.codePointAt(0)!);
    const steps = codes.slice(1).map((c, i) => c - codes[i]!);
    if (steps.every((s) => s === 0)) return 'the PIN must not repeat one character';
    if (steps.every((s) => s === 1) || steps.every((s) => s === -1))
      return 'the PIN must not be a simple sequence';
  }
  return undefined;
}
