// Small pure statistics shared by workflows, engines and reports (workflow code imports this file).

/**
 * Mean of the numbers in `xs`, skipping null/undefined (a unit that has not reported yet); null when
 * nothing is left (an empty average is not zero). NaN propagates: a diverged loss must stay visible.
 */
export function mean(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number');
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
