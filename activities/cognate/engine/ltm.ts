// Long-term memory: a kNN memory of one block's own attention keys and values (Memorizing Transformers,
// Wu et al. 2022, arXiv 2203.08913), kept across segments and outside the gradient tape.
//
// - Entries: every written position of the memory block contributes one slot holding, per attention head,
//   its key and value (width dModel / nHeads), taken before rotary positions: a memory has no position
//   relative to the current segment, so it is matched on content only.
// - Streams: one bank per batch row (row b of every batch continues document stream b, as when a long
//   document is read segment by segment); each stream holds at most `capacity` slots and forgets its
//   oldest first (FIFO, as in the paper).
// - Read (model.ts): each query of the memory block takes the top-k slots of its own head by q·k and
//   attends over them; the model mixes that with local attention by a learned per-head gate.
// - Write: after a segment, its positions are offered; a position is written unless the surprise filter is
//   on (surpriseThreshold not null) and its token was not surprising (the loss of predicting it stayed
//   below the running mean + threshold · std). Off by default: the paper writes every position.
// - Float32Arrays are the source of truth; the tensors of a read are cached and dropped on writes.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../../common/rng';

export interface LtmConfig {
  nHeads: number;
  /** Width of one head's key and value (dModel / nHeads). */
  headDim: number;
  /** Slots per stream. */
  capacity: number;
  topK: number;
  /** null: write every position; a number: write positions whose token loss is above mean + this · std. */
  surpriseThreshold: number | null;
}

export interface LtmStats {
  /** Slots in use, summed over streams. */
  fill: number;
  /** Capacity of one stream. */
  capacity: number;
  streams: number;
  /** Queries answered (one per position per head that read a non-empty bank). */
  reads: number;
  writes: number;
  /** Slots overwritten because their stream was full. */
  evictions: number;
  /** Positions offered to the write filter and how many passed it. */
  offered: number;
  surprising: number;
  /** Running token-loss statistics of the surprise filter. */
  lossMean: number;
  lossStd: number;
}

interface Stream {
  fill: number;
  /** Next slot to write (FIFO ring). */
  next: number;
  keys: Float32Array; // [nHeads, capacity, headDim]
  values: Float32Array; // [nHeads, capacity, headDim]
}

export interface LtmState {
  version: 2;
  config: LtmConfig;
  streams: { fill: number; next: number; keys: Float32Array; values: Float32Array }[];
  stats: { reads: number; writes: number; evictions: number; offered: number; surprising: number };
  lossStats: { mean: number; variance: number; count: number };
}

/** Read tensors: keys/values [B, H, S, D] (S = the largest fill of the streams read) and an additive mask [B, 1, 1, S]. */
export interface MemoryTensors {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  /** 0 for a slot in use, −1e9 for padding; null when every slot is in use. */
  mask: tf.Tensor4D | null;
}

/** Weight of history in the running loss mean/variance, per write. */
const LOSS_STATS_DECAY = 0.99;

export class LongTermMemory {
  readonly config: LtmConfig;
  private streams: Stream[] = [];
  private counters = { reads: 0, writes: 0, evictions: 0, offered: 0, surprising: 0 };
  private lossStats = { mean: 0, variance: 0, count: 0 };
  private cache: { rows: number; tensors: MemoryTensors } | null = null;

  constructor(config: LtmConfig) {
    this.config = { ...config };
  }

  /** Slots in use over all streams. */
  get size(): number {
    return this.streams.reduce((n, s) => n + s.fill, 0);
  }

  stats(): LtmStats {
    return {
      fill: this.size,
      capacity: this.config.capacity,
      streams: this.streams.length,
      ...this.counters,
      lossMean: this.lossStats.mean,
      lossStd: Math.sqrt(this.lossStats.variance),
    };
  }

  /** Forget every entry (counters stay). */
  clear(): void {
    this.streams = [];
    this.dropCache();
  }

  /** The bank of streams 0..rows−1 as tensors, or null when they are all empty. Reads are counted by the caller (countReads). */
  tensors(rows: number): MemoryTensors | null {
    if (this.cache && this.cache.rows === rows) return this.cache.tensors;
    this.dropCache();
    const { nHeads: H, headDim: D, capacity } = this.config;
    const fills = Array.from({ length: rows }, (_, b) => this.streams[b]?.fill ?? 0);
    const S = Math.max(0, ...fills);
    if (S === 0) return null;
    const keys = new Float32Array(rows * H * S * D);
    const values = new Float32Array(rows * H * S * D);
    const mask = new Float32Array(rows * S);
    for (let b = 0; b < rows; b++) {
      const s = this.streams[b];
      mask.fill(-1e9, b * S + fills[b], (b + 1) * S);
      if (!s) continue;
      for (let h = 0; h < H; h++) {
        const from = h * capacity * D;
        const to = (b * H + h) * S * D;
        keys.set(s.keys.subarray(from, from + s.fill * D), to);
        values.set(s.values.subarray(from, from + s.fill * D), to);
      }
    }
    const padded = fills.some((f) => f < S);
    const tensors: MemoryTensors = {
      keys: tf.keep(tf.tensor4d(keys, [rows, H, S, D])),
      values: tf.keep(tf.tensor4d(values, [rows, H, S, D])),
      mask: padded ? tf.keep(tf.tensor4d(mask, [rows, 1, 1, S])) : null,
    };
    this.cache = { rows, tensors };
    return tensors;
  }

  /** Count a read of `perRow` queries by each of streams 0..rows−1 that holds entries (an empty stream answers none). */
  countReads(perRow: number, rows: number): void {
    for (let b = 0; b < rows; b++) if ((this.streams[b]?.fill ?? 0) > 0) this.counters.reads += perRow;
  }

  /** Empty these streams (a batch row starts a new document; counters stay). */
  resetStreams(rows: readonly number[]): void {
    let changed = false;
    for (const b of rows) {
      const s = this.streams[b];
      if (!s || s.fill === 0) continue;
      s.fill = 0;
      s.next = 0;
      s.keys.fill(0);
      s.values.fill(0);
      changed = true;
    }
    if (changed) this.dropCache();
  }

  /**
   * Offer one segment's entries: keys, values [B, H, T, D] (row b goes to stream b) with the per-position
   * next-token losses [B, T] (needed by the surprise filter only) and an optional 0/1 mask [B, T].
   */
  write(
    keys: Float32Array,
    values: Float32Array,
    shape: [number, number, number, number],
    tokenLosses?: Float32Array,
    mask?: Float32Array,
  ): { written: number } {
    const [B, H, T, D] = shape;
    const { nHeads, headDim, capacity, surpriseThreshold } = this.config;
    if (H !== nHeads || D !== headDim) throw new Error(`ltm.write: entries have ${H} heads of ${D}, the memory ${nHeads} of ${headDim}`);
    if (keys.length !== B * H * T * D || values.length !== keys.length)
      throw new Error(`ltm.write: keys/values do not hold ${B}x${H}x${T}x${D} values`);
    if (tokenLosses && tokenLosses.length !== B * T)
      throw new Error(`ltm.write: tokenLosses has ${tokenLosses.length} values, expected ${B * T}`);
    // Position t holds token t; how surprising token t was is the loss of predicting it at t − 1.
    const surpriseOf = (b: number, t: number): number => (tokenLosses ? tokenLosses[b * T + Math.max(0, t - 1)] : 0);
    const live: [number, number][] = [];
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (!mask || mask[b * T + t] > 0) live.push([b, t]);
    let chosen = live;
    if (surpriseThreshold !== null) {
      if (!tokenLosses) throw new Error('ltm.write: the surprise filter is on (surpriseThreshold set) but no token losses were given');
      const losses = live.map(([b, t]) => surpriseOf(b, t));
      if (losses.length > 0) this.updateLossStats(losses);
      const std = Math.sqrt(this.lossStats.variance) + 1e-6;
      chosen = live.filter((_, i) => (losses[i] - this.lossStats.mean) / std > surpriseThreshold);
    }
    this.counters.offered += live.length;
    this.counters.surprising += chosen.length;
    for (const [b, t] of chosen) {
      const s = this.stream(b);
      const slot = s.next;
      if (s.fill === capacity) this.counters.evictions++;
      else s.fill++;
      s.next = (s.next + 1) % capacity;
      for (let h = 0; h < H; h++) {
        const from = ((b * H + h) * T + t) * D;
        const to = (h * capacity + slot) * D;
        s.keys.set(keys.subarray(from, from + D), to);
        s.values.set(values.subarray(from, from + D), to);
      }
    }
    this.counters.writes += chosen.length;
    if (chosen.length > 0) this.dropCache();
    return { written: chosen.length };
  }

  state(): LtmState {
    return {
      version: 2,
      config: { ...this.config },
      streams: this.streams.map((s) => ({ fill: s.fill, next: s.next, keys: s.keys.slice(), values: s.values.slice() })),
      stats: { ...this.counters },
      lossStats: { ...this.lossStats },
    };
  }

  load(state: LtmState): void {
    const { nHeads, headDim, capacity } = this.config;
    if (state.version !== 2)
      throw new Error(`ltm.load: state version ${String(state.version)} is not 2 (the kNN memory of attention keys/values)`);
    for (const field of ['nHeads', 'headDim', 'capacity'] as const) {
      if (state.config[field] !== this.config[field])
        throw new Error(`ltm.load: state has ${field}=${state.config[field]}, this memory has ${this.config[field]}`);
    }
    const size = nHeads * capacity * headDim;
    state.streams.forEach((s, i) => {
      if (s.keys.length !== size || s.values.length !== size)
        throw new Error(`ltm.load: stream ${i} keys/values do not hold ${nHeads}x${capacity}x${headDim} values`);
      if (!Number.isInteger(s.fill) || s.fill < 0 || s.fill > capacity || !Number.isInteger(s.next) || s.next < 0 || s.next >= capacity) {
        throw new Error(`ltm.load: stream ${i} fill ${s.fill} / next ${s.next} out of range`);
      }
    });
    this.streams = state.streams.map((s) => ({ fill: s.fill, next: s.next, keys: s.keys.slice(), values: s.values.slice() }));
    this.counters = { ...state.stats };
    this.lossStats = { ...state.lossStats };
    this.dropCache();
  }

  dispose(): void {
    this.dropCache();
  }

  private stream(b: number): Stream {
    const { nHeads, headDim, capacity } = this.config;
    while (this.streams.length <= b) {
      this.streams.push({
        fill: 0,
        next: 0,
        keys: new Float32Array(nHeads * capacity * headDim),
        values: new Float32Array(nHeads * capacity * headDim),
      });
    }
    return this.streams[b];
  }

  /** Mixture update of the running mean/variance with a batch of losses (the first batch initialises). */
  private updateLossStats(losses: number[]): void {
    const batchMean = losses.reduce((a, b) => a + b, 0) / losses.length;
    const batchVar = losses.reduce((a, b) => a + (b - batchMean) ** 2, 0) / losses.length;
    const s = this.lossStats;
    if (s.count === 0) {
      s.mean = batchMean;
      s.variance = batchVar;
    } else {
      const d = LOSS_STATS_DECAY;
      s.variance = d * s.variance + (1 - d) * batchVar + d * (1 - d) * (batchMean - s.mean) ** 2;
      s.mean = d * s.mean + (1 - d) * batchMean;
    }
    s.count += losses.length;
  }

  private dropCache(): void {
    if (!this.cache) return;
    const { keys, values, mask } = this.cache.tensors;
    tf.dispose([keys, values, ...(mask ? [mask] : [])]);
    this.cache = null;
  }
}

const { cos, log, sin, sqrt, PI } = Math; // module-level: global lookups are slow inside jest's sandbox

/** n values from N(0, std²) by Box–Muller. */
export function gaussianMatrix(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rng.next(); // (0, 1]: log is finite
    const u2 = rng.next();
    const r = sqrt(-2 * log(u1)) * std;
    out[i] = r * cos(2 * PI * u2);
    if (i + 1 < n) out[i + 1] = r * sin(2 * PI * u2);
  }
  return out;
}
