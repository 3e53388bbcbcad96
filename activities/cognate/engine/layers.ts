// Differentiable building blocks of the Cognate model, shared by the model, its tests and the benchmark.
//
// Two tfjs facts shape this file:
// - On the wasm backend a matMul with transposeA/transposeB runs ~10x slower than the plain one (measured
//   2.2 vs 22-27 GFLOP/s at [512,216]x[216,864]), and tfjs' own matMul gradient uses exactly those flags.
//   `matmul` below transposes explicitly in both directions, and linear weights are stored [in, out]
//   (export transposes them to PyTorch's [out, in]).
// - tfjs has no gradient for comparisons or topk. `detach` gives a tensor the tape does not know, so masks
//   and retrieval indices computed from it never enter the backward pass.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers neither gradients nor chained ops (x.add(y)); these ESM side-effect
// modules do (tsx loads them as is; jest must be allowed to transform @tensorflow/tfjs-core/dist).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';

/** The same data as a new tensor with no tape history: a stop-gradient that copies nothing. */
export function detach<T extends tf.Tensor>(x: T): T {
  const engine = tf.engine();
  const copy = engine.makeTensorFromDataId(x.dataId, x.shape, x.dtype) as T;
  engine.backend.incRef(x.dataId); // the data now has one more owner: it lives until both are disposed
  return copy;
}

type SaveFn = (tensors: tf.Tensor[]) => void;
type CustomOp = (inputs: tf.Tensor[], save: SaveFn) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

/**
 * tf.customGrad with typed inputs: f gets the inputs and a save function, returns the value and one
 * gradient per input. The backward runs after the forward's scope is disposed: gradFunc may use only
 * its arguments, tensors passed to save(), and tensors created outside the gradient function.
 */
export function customOp(f: CustomOp): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as SaveFn;
    return f(args as tf.Tensor[], save);
  });
  return (...inputs) => op(...inputs);
}

/** Swap the last two axes. */
export function swapLastTwo(x: tf.Tensor): tf.Tensor {
  const perm = [...Array(x.rank).keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

/** a @ b for rank 2 or equal-batch rank 3; forward and backward use only untransposed 2-D matMuls (fast on wasm). */
export function matmul<T extends tf.Tensor2D | tf.Tensor3D>(a: T, b: T): T {
  const op = customOp(([x, y], save) => {
    save([x, y]);
    return {
      value: matMul2d(x, y),
      gradFunc: (dy, [xs, ys]) => [matMul2d(dy, swapLastTwo(ys)), matMul2d(swapLastTwo(xs), dy)],
    };
  });
  return op(a, b) as T;
}

/** Batched matMul as a loop of 2-D ones: wasm's batched kernel runs 20-50x slower ([4,512,54]x[4,54,512]: 0.5 vs 8 GFLOP/s). */
function matMul2d(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  const bs = tf.unstack(b);
  return tf.stack(tf.unstack(a).map((ai, i) => tf.matMul(ai as tf.Tensor2D, bs[i] as tf.Tensor2D)));
}

/** x [..., in] @ weight [in, out] (+ bias [out]) → [..., out]. */
export function linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor {
  const [inDim, outDim] = weight.shape;
  const rows = x.reshape([-1, inDim]) as tf.Tensor2D;
  let y: tf.Tensor = matmul(rows, weight); // [N, out]
  if (bias) y = y.add(bias);
  return y.reshape([...x.shape.slice(0, -1), outDim]);
}

/** RMSNorm (Zhang & Sennrich 2019): no mean subtraction, no bias. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps = 1e-6): tf.Tensor {
  const meanSquare = x.square().mean(-1, true);
  return x.mul(meanSquare.add(eps).rsqrt()).mul(weight);
}

export function silu(x: tf.Tensor): tf.Tensor {
  return x.mul(x.sigmoid());
}

/** Rotary tables (Su et al. 2021, GPT-NeoX half-split layout): cos, sin [maxSeqLen, headDim]. */
export function rotaryTables(maxSeqLen: number, headDim: number, base = 10000): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(maxSeqLen * headDim);
  const sin = new Float32Array(maxSeqLen * headDim);
  for (let t = 0; t < maxSeqLen; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t / Math.pow(base, (2 * i) / headDim);
      for (const j of [i, i + half]) {
        cos[t * headDim + j] = Math.cos(angle);
        sin[t * headDim + j] = Math.sin(angle);
      }
    }
  }
  return { cos: tf.tensor2d(cos, [maxSeqLen, headDim]), sin: tf.tensor2d(sin, [maxSeqLen, headDim]) };
}

/** rotate_half as a matrix: x @ P = concat(−x[D/2:], x[:D/2]) ([D, D], a signed permutation). */
export function rotateHalfMatrix(headDim: number): tf.Tensor2D {
  const half = headDim / 2;
  const p = new Float32Array(headDim * headDim);
  for (let i = 0; i < half; i++) {
    p[(i + half) * headDim + i] = -1; // out[i] = −x[i + half]
    p[i * headDim + i + half] = 1; // out[i + half] = x[i]
  }
  return tf.tensor2d(p, [headDim, headDim]);
}

/**
 * Rotate x [..., R, H, D] by per-row angles cos, sin [R, D] (rows are positions).
 * rotate_half is a matmul with rotateHalf [D, D]: slicing and concatenating 27-wide halves is ~100x slower on wasm.
 */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D, rotateHalf: tf.Tensor2D): tf.Tensor {
  const rotated = linear(x, rotateHalf);
  return x.mul(cos.expandDims(1)).add(rotated.mul(sin.expandDims(1))); // cos, sin [R, 1, D] broadcast over heads
}

/** Additive causal mask [T, T]: 0 where key <= query, -1e9 above the diagonal. */
export function causalMask(t: number): tf.Tensor2D {
  const m = new Float32Array(t * t);
  for (let q = 0; q < t; q++) for (let k = q + 1; k < t; k++) m[q * t + k] = -1e9;
  return tf.tensor2d(m, [t, t]);
}

/**
 * softmax(q kᵀ / sqrt(D) + mask) v over equal-batch rank-3 tensors.
 * q [N, Tq, D], k [N, Tk, D], v [N, Tk, D], mask broadcastable to [N, Tq, Tk] → [N, Tq, D].
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor): tf.Tensor3D {
  const scale = 1 / Math.sqrt(q.shape[2]);
  const scores = matmul(q, swapLastTwo(k) as tf.Tensor3D).mul(scale).add(mask); // [N, Tq, Tk]
  return matmul(tf.softmax(scores) as tf.Tensor3D, v); // [N, Tq, D]
}

/**
 * Per-row cross-entropy: logits [N, V], targets int [N] → [N].
 * Custom gradient (softmax − onehot) · dy: one fused step instead of differentiating logSoftmax and a pick.
 */
export function crossEntropyPerRow(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const vocab = logits.shape[1];
  // int32 oneHot then a cast: the wasm OneHot kernel writes integer bits into a float32 output.
  const oneHot = (ids: tf.Tensor): tf.Tensor => tf.oneHot(ids as tf.Tensor1D, vocab).toFloat(); // [N, V]
  const op = customOp(([z], save) => {
    save([z, targets]); // the backward runs after the forward's tensors are freed: keep what it needs
    return {
      value: tf.logSumExp(z, -1).sub(z.mul(oneHot(targets)).sum(-1)),
      gradFunc: (dy, [savedLogits, savedTargets]) => [tf.softmax(savedLogits).sub(oneHot(savedTargets)).mul(dy.expandDims(1))],
    };
  });
  return op(logits) as tf.Tensor1D;
}
