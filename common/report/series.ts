// Bounded histories for curves: a run of any length keeps at most `max` points. When full, neighbouring
// pairs are merged (the caller says how), halving the count: the curve's resolution coarsens evenly over the
// whole run instead of dropping its beginning, and the state that carries it (a checkpoint) stays small.
// Deterministic: the same points always compact the same way, so a resumed run's history equals an
// uninterrupted one's.

/** Merge pairs in place once `items` grows past `max` (an odd last item stays as it is). */
export function compactPairs<T>(items: T[], max: number, merge: (earlier: T, later: T) => T): void {
  if (items.length <= max) return;
  const merged: T[] = [];
  for (let i = 0; i + 1 < items.length; i += 2) merged.push(merge(items[i], items[i + 1]));
  if (items.length % 2 === 1) merged.push(items[items.length - 1]);
  items.splice(0, items.length, ...merged);
}

/** Weighted mean of two values by the number of raw points each stands for. */
export function weightedMean(a: number, wa: number, b: number, wb: number): number {
  return (a * wa + b * wb) / (wa + wb);
}
