// Small pure statistics shared by workflows, engines and reports (workflow code imports this file).

/** Mean of the finite numbers in `xs`; null when there are none (an empty average is not zero). */
export function mean(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
