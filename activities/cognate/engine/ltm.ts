// Long-term memory: a bank of `capacity` slots of (key, value) vectors of width dMem that persists
// across batches and outside the gradient tape.
//
// - Read: per query, the top-k slots by dot product with the unit keys (the model passes its read
//   query already mapped into key space, so the top-k are exactly the largest attention logits).
//   The bank enters the model as constants: gradients reach the model's projections, never the bank.
// - Write: a hidden state is written when its token was surprising (loss above running mean + z·std)
//   and novel (1 − max cosine to stored keys above a threshold); a full bank evicts its
//   least-recently-used slot (reads and writes both count as use).
// - Float32Arrays are the source of truth; tensors of them are cached for reads and dropped on writes.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../../common/rng';

export interface LtmConfig {
  /** Width of the hidden states written. */
  dModel: number;
  dMem: number;
  capacity: number;
  topK: number;
  /** Write when (loss − mean) / std exceeds this. */
  surpriseThreshold: number;
  /** Write when 1 − max cosine similarity to stored keys exceeds this. */
  noveltyThreshold: number;
}

export interface LtmStats {
  fill: number;
  capacity: number;
  /** Queries answered (one per position per layer that read). */
  reads: number;
  writes: number;
  evictions: number;
  /** Tokens offered to the write gate and how many passed each test. */
  offered: number;
  surprising: number;
  novel: number;
  /** Running token-loss statistics of the surprise gate. */
  lossMean: number;
  lossStd: number;
}

export interface LtmState {
  version: 1;
  config: LtmConfig;
  fill: number;
  clock: number;
  keys: Float32Array; // [capacity, dMem], unit rows for occupied slots
  values: Float32Array; // [capacity, dMem]
  lastUsed: Float64Array; // [capacity], clock of the last read or write
  /** [dModel, dMem] projection of hidden states into memory space; null when dModel == dMem (identity). */
  writeProjection: Float32Array | null;
  stats: { reads: number; writes: number; evictions: number; offered: number; surprising: number; novel: number };
  lossStats: { mean: number; variance: number; count: number };
}

/** Weight of history in the running loss mean/variance, per batch. */
const LOSS_STATS_DECAY = 0.99;

export class LongTermMemory {
  readonly config: LtmConfig;
  private fill = 0;
  private clock = 0;
  private keys: Float32Array;
  private values: Float32Array;
  private lastUsed: Float64Array;
  private writeProjection: Float32Array | null;
  private counters = { reads: 0, writes: 0, evictions: 0, offered: 0, surprising: 0, novel: 0 };
  private lossStats = { mean: 0, variance: 0, count: 0 };
  private cache: { keys: tf.Tensor2D; keysT: tf.Tensor2D; values: tf.Tensor2D } | null = null;

  constructor(config: LtmConfig, seed: number) {
    this.config = { ...config };
    const { capacity, dMem, dModel } = config;
    this.keys = new Float32Array(capacity * dMem);
    this.values = new Float32Array(capacity * dMem);
    this.lastUsed = new Float64Array(capacity);
    // A fixed Gaussian projection with variance 1/dMem keeps norms and angles on average (Johnson–Lindenstrauss);
    // it is not trained because the bank sits outside the tape.
    this.writeProjection = dModel === dMem ? null : gaussianMatrix(new Rng(seed), dModel * dMem, 1 / Math.sqrt(dMem));
  }

  get size(): number {
    return this.fill;
  }

  stats(): LtmStats {
    return {
      fill: this.fill,
      capacity: this.config.capacity,
      ...this.counters,
      lossMean: this.lossStats.mean,
      lossStd: Math.sqrt(this.lossStats.variance),
    };
  }

  /**
   * Top-k slots for each query [N, dMem] (a tensor without tape history) → keys, values [N, k, dMem],
   * k = min(topK, fill); null while the bank is empty.
   */
  retrieve(query: tf.Tensor2D): { keys: tf.Tensor3D; values: tf.Tensor3D } | null {
    if (this.fill === 0) return null;
    const k = Math.min(this.config.topK, this.fill);
    const bank = this.tensors();
    const n = query.shape[0];
    const scores = tf.matMul(query, bank.keysT); // [N, fill]
    const { indices } = tf.topk(scores, k); // [N, k]
    const flat = indices.reshape<tf.Tensor1D>([-1]);
    this.clock++;
    for (const slot of flat.dataSync()) this.lastUsed[slot] = this.clock;
    this.counters.reads += n;
    return {
      keys: tf.gather(bank.keys, flat).reshape([n, k, this.config.dMem]),
      values: tf.gather(bank.values, flat).reshape([n, k, this.config.dMem]),
    };
  }

  /**
   * Offer hidden states [N, dModel] with their token losses [N] (and a 0/1 mask [N]): the surprising and
   * novel ones are written. Returns how many were written.
   */
  write(hidden: Float32Array, tokenLosses: Float32Array, mask?: Float32Array): { written: number; surprising: number; novel: number } {
    const { dModel, dMem, surpriseThreshold, noveltyThreshold } = this.config;
    const n = tokenLosses.length;
    if (hidden.length !== n * dModel) throw new Error(`ltm.write: hidden has ${hidden.length} values, expected ${n} x ${dModel}`);
    const live = [...Array(n).keys()].filter((i) => !mask || mask[i] > 0);
    if (live.length === 0) return { written: 0, surprising: 0, novel: 0 };
    this.updateLossStats(live.map((i) => tokenLosses[i]));
    const std = Math.sqrt(this.lossStats.variance) + 1e-6;
    const surprising = live.filter((i) => (tokenLosses[i] - this.lossStats.mean) / std > surpriseThreshold);
    this.counters.offered += live.length;
    this.counters.surprising += surprising.length;
    this.clock++;
    let written = 0;
    let novel = 0;
    for (const i of surprising) {
      const value = this.project(hidden.subarray(i * dModel, (i + 1) * dModel));
      const key = unit(value);
      if (1 - this.maxSimilarity(key) <= noveltyThreshold) continue;
      novel++;
      const slot = this.claimSlot();
      this.keys.set(key, slot * dMem);
      this.values.set(value, slot * dMem);
      this.lastUsed[slot] = this.clock;
      written++;
    }
    this.counters.novel += novel;
    this.counters.writes += written;
    if (written > 0) this.dropCache();
    return { written, surprising: surprising.length, novel };
  }

  state(): LtmState {
    return {
      version: 1,
      config: { ...this.config },
      fill: this.fill,
      clock: this.clock,
      keys: this.keys.slice(),
      values: this.values.slice(),
      lastUsed: this.lastUsed.slice(),
      writeProjection: this.writeProjection ? this.writeProjection.slice() : null,
      stats: { ...this.counters },
      lossStats: { ...this.lossStats },
    };
  }

  load(state: LtmState): void {
    const { dModel, dMem, capacity } = this.config;
    if (state.version !== 1) throw new Error(`ltm.load: unknown state version ${String(state.version)}`);
    for (const field of ['dModel', 'dMem', 'capacity'] as const) {
      if (state.config[field] !== this.config[field]) throw new Error(`ltm.load: state has ${field}=${state.config[field]}, this memory has ${this.config[field]}`);
    }
    if (state.keys.length !== capacity * dMem || state.values.length !== capacity * dMem || state.lastUsed.length !== capacity) {
      throw new Error('ltm.load: keys/values/lastUsed sizes do not match capacity x dMem');
    }
    if ((state.writeProjection?.length ?? 0) !== (dModel === dMem ? 0 : dModel * dMem)) throw new Error('ltm.load: writeProjection size mismatch');
    if (!Number.isInteger(state.fill) || state.fill < 0 || state.fill > capacity) throw new Error(`ltm.load: fill ${state.fill} out of range`);
    this.fill = state.fill;
    this.clock = state.clock;
    this.keys = state.keys.slice();
    this.values = state.values.slice();
    this.lastUsed = state.lastUsed.slice();
    this.writeProjection = state.writeProjection ? state.writeProjection.slice() : null;
    this.counters = { ...state.stats };
    this.lossStats = { ...state.lossStats };
    this.dropCache();
  }

  dispose(): void {
    this.dropCache();
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

  private project(h: Float32Array): Float32Array {
    const { dModel, dMem } = this.config;
    if (!this.writeProjection) return h.slice();
    const out = new Float32Array(dMem);
    for (let i = 0; i < dModel; i++) {
      const hi = h[i];
      const row = i * dMem;
      for (let j = 0; j < dMem; j++) out[j] += hi * this.writeProjection[row + j];
    }
    return out;
  }

  /** Largest cosine between a unit key and the stored keys (−1 when empty). */
  private maxSimilarity(key: Float32Array): number {
    const dMem = this.config.dMem;
    let best = -1;
    for (let slot = 0; slot < this.fill; slot++) {
      let dot = 0;
      const base = slot * dMem;
      for (let j = 0; j < dMem; j++) dot += key[j] * this.keys[base + j];
      if (dot > best) best = dot;
    }
    return best;
  }

  /** The next empty slot, or the least recently used one (lowest index on ties). */
  private claimSlot(): number {
    if (this.fill < this.config.capacity) return this.fill++;
    let victim = 0;
    for (let slot = 1; slot < this.fill; slot++) if (this.lastUsed[slot] < this.lastUsed[victim]) victim = slot;
    this.counters.evictions++;
    return victim;
  }

  private tensors(): { keys: tf.Tensor2D; keysT: tf.Tensor2D; values: tf.Tensor2D } {
    if (!this.cache) {
      const { dMem } = this.config;
      const used = this.fill * dMem;
      const keys = tf.keep(tf.tensor2d(this.keys.subarray(0, used), [this.fill, dMem]));
      const keysT = tf.keep(tf.transpose<tf.Tensor2D>(keys)); // [dMem, fill]: untransposed matMul for the search
      const values = tf.keep(tf.tensor2d(this.values.subarray(0, used), [this.fill, dMem]));
      this.cache = { keys, keysT, values };
    }
    return this.cache;
  }

  private dropCache(): void {
    if (!this.cache) return;
    this.cache.keys.dispose();
    this.cache.keysT.dispose();
    this.cache.values.dispose();
    this.cache = null;
  }
}

function unit(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  return v.map((x) => x / norm);
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
