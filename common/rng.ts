// The one seeded PRNG of both pipelines. Every random draw (weight init, data order, environments,
// exploration, evaluation, the LTM) goes through an Rng so a run is reproducible from its seed, and the
// whole state is four uint32s so a checkpoint restores the exact stream.
//
// Algorithm: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, PractRand-tested), warmed up
// 15 rounds so nearby seeds give unrelated streams. int(n) maps a uint32 by multiplication (floor(u * n)):
// its bias is below n / 2^32, far under anything a training run can notice, and it costs one draw.

export type RngState = [number, number, number, number];

/** Mix a list of integers into one 32-bit seed (so derived streams for env i, episode j... differ). */
export function hashSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p & 0xffff), 0x01000193);
    h = Math.imul(h ^ (p >>> 16), 0x01000193);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** FNV-1a of a string, for streams derived from names (a dataset source, a model). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class Rng {
  private a = 0x9e3779b9;
  private b = 0x243f6a88;
  private c = 0xb7e15162;
  private d = 0;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`rng seed must be an integer (got ${seed})`);
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.nextUint32(); // warm-up decorrelates nearby seeds
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.load(state);
    return r;
  }

  state(): RngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /** Continue the stream a state() call captured. Accepts signed or unsigned 32-bit words. */
  load(state: RngState): void {
    if (!Array.isArray(state) || state.length !== 4 || !state.every((v) => Number.isInteger(v) && v >= -0x80000000 && v <= 0xffffffff)) {
      throw new Error(`rng state must be four 32-bit integers (got ${JSON.stringify(state)})`);
    }
    [this.a, this.b, this.c, this.d] = state.map((v) => v | 0);
  }

  /** A uniformly distributed uint32. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new Error(`rng.int(n) needs an integer 1..2^32 (got ${n})`);
    return Math.floor(this.next() * n);
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /** Fisher-Yates shuffle in place; returns `items`. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** Index drawn from unnormalised non-negative weights[offset .. offset+count). */
  categorical(weights: ArrayLike<number>, offset = 0, count = weights.length): number {
    let total = 0;
    for (let i = 0; i < count; i++) total += weights[offset + i];
    let u = this.next() * total;
    for (let i = 0; i < count; i++) {
      u -= weights[offset + i];
      if (u < 0) return i;
    }
    for (let i = count - 1; i >= 0; i--) if (weights[offset + i] > 0) return i; // float round-off
    return 0;
  }
}
